import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../workers/app.ts";
import { readOrigins } from "../../workers/dashboard-origins.ts";
import { BASE, admin, authed, createClient } from "./helpers.ts";

const DASHBOARD = "https://zapmeter-dashboard.pages.dev";

/** Calls the app as deployed with the dashboard on Pages (DASHBOARD_ORIGIN set). */
async function callWithDashboard(path: string, init: RequestInit, dashboardOrigin = `${DASHBOARD}, https://other.example`): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${BASE}${path}`, init), { ...env, DASHBOARD_ORIGIN: dashboardOrigin }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("cross-origin dashboard (Cloudflare Pages)", () => {
  it("lets the dashboard read a report's file name and when to retry", async () => {
    const { id } = await createClient();
    const res = await callWithDashboard(`/v1/clients/${id}/report?from=2026-11-20&to=2026-11-21`, authed(await admin(), { headers: { origin: DASHBOARD } }));
    await res.arrayBuffer();
    expect([res.status, res.headers.get("access-control-allow-origin"), res.headers.get("content-disposition")]).toEqual([200, DASHBOARD, expect.stringMatching(/^attachment; filename=/)]);
    // A browser hides every other header from the page's script.
    expect(res.headers.get("access-control-expose-headers")?.split(",").map((h) => h.trim()).sort()).toEqual(["content-disposition", "retry-after"]);
  });

  it("answers the preflight of the ticket call for the configured origin only", async () => {
    const preflight = (origin: string) =>
      callWithDashboard("/v1/live/ticket", {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
    const ok = await preflight(DASHBOARD);
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe(DASHBOARD);
    expect(ok.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
    expect(ok.headers.get("access-control-allow-credentials")).toBeNull();
    const evil = await preflight("https://evil.example");
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("issues a ticket to the dashboard's bearer token and lets the socket open with it", async () => {
    const res = await callWithDashboard("/v1/live/ticket", {
      method: "POST",
      headers: { origin: DASHBOARD, authorization: `Bearer ${await admin()}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(DASHBOARD);
    const { ticket } = (await res.json()) as { ticket: string };
    const ws = await callWithDashboard(`/v1/live?ticket=${ticket}`, { headers: { upgrade: "websocket", origin: DASHBOARD } });
    expect(ws.status).toBe(101);
    ws.webSocket!.accept();
    ws.webSocket!.close(1000, "done");
  });

  it("accepts the session cookie from the configured dashboard origin, not from others", async () => {
    const cookie = `zm_session=${await admin()}`;
    const fromDashboard = await callWithDashboard("/v1/live", { headers: { upgrade: "websocket", origin: DASHBOARD, cookie } });
    expect(fromDashboard.status).toBe(101);
    fromDashboard.webSocket!.accept();
    fromDashboard.webSocket!.close(1000, "done");
    const fromElsewhere = await callWithDashboard("/v1/live", { headers: { upgrade: "websocket", origin: "https://evil.example", cookie } });
    expect(fromElsewhere.status).toBe(403);
  });

  it("reads DASHBOARD_ORIGIN as wrangler prints a Pages project's URL: with its trailing slash", async () => {
    const printed = `${DASHBOARD}/ , zapmeter-dashboard.pages.dev, ftp://files.example`;
    const preflight = await callWithDashboard(
      "/v1/auth/login",
      { method: "OPTIONS", headers: { origin: DASHBOARD, "access-control-request-method": "POST", "access-control-request-headers": "content-type" } },
      printed,
    );
    expect(preflight.headers.get("access-control-allow-origin")).toBe(DASHBOARD);
    const cookie = `zm_session=${await admin()}`;
    const socket = await callWithDashboard("/v1/live", { headers: { upgrade: "websocket", origin: DASHBOARD, cookie } }, printed);
    expect(socket.status).toBe(101);
    socket.webSocket!.accept();
    socket.webSocket!.close(1000, "done");
    // An entry without a scheme is no origin, and one of another scheme is "null", what sandboxed
    // pages send: both let nothing in, and npm run deploy names them.
    expect(readOrigins(printed)).toEqual({ origins: [DASHBOARD], unreadable: ["zapmeter-dashboard.pages.dev", "ftp://files.example"] });
    const sandboxed = await callWithDashboard("/v1/live", { headers: { upgrade: "websocket", origin: "null", cookie } }, printed);
    expect(sandboxed.status).toBe(403);
    const bare = await callWithDashboard("/v1/live", { headers: { upgrade: "websocket", origin: "https://zapmeter-dashboard.pages.dev.evil.example", cookie } }, printed);
    expect(bare.status).toBe(403);
  });

  it("says once per isolate that a DASHBOARD_ORIGIN entry is not a URL, which lets no dashboard in", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const setting = "zapmeter-dashboard.pages.dev";
    const ask = () => callWithDashboard("/v1/live/ticket", { method: "OPTIONS", headers: { origin: DASHBOARD, "access-control-request-method": "POST" } }, setting);
    const answers = [await ask(), await ask()];
    const lines = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as unknown);
    errors.mockRestore();

    expect(answers.map((a) => a.headers.get("access-control-allow-origin"))).toEqual([null, null]);
    expect(lines).toEqual([
      { level: "error", event: "dashboard_origin_invalid", value: setting, unreadable: [setting], expected: "URLs such as https://zapmeter-dashboard.pages.dev, comma-separated" },
    ]);
  });
});
