import { env } from "cloudflare:workers";
import { sign as jwtSign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { admin, authed, call, signIn, unique } from "./helpers.ts";

const json = (method: string, body: unknown, token?: string): RequestInit => {
  const init: RequestInit = { method, headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) };
  return token ? authed(token, init) : init;
};

describe("hostile input to the auth, admin and live routes", () => {
  it("is answered 4xx, never 5xx: malformed tokens, ids, bodies and queries", async () => {
    const a = await admin();
    const now = Math.floor(Date.now() / 1000);
    const weird = [
      await jwtSign({ sub: "1", jti: 5, iat: now, exp: now + 10 }, env.SESSION_SECRET, "HS256"),
      await jwtSign({ sub: "99999999999999999999", jti: "x", iat: now, exp: now + 10 }, env.SESSION_SECRET, "HS256"),
      await jwtSign({ sub: "1", jti: "x", iat: now, exp: now + 10, iat_ms: "abc" }, env.SESSION_SECRET, "HS256"),
      await jwtSign({ sub: "1", jti: "x", iat: 1e300, exp: 1e300 }, env.SESSION_SECRET, "HS256"),
      "a.b.c",
      "x".repeat(5000),
    ];
    const cases: [string, RequestInit][] = [
      ["/v1/auth/login", json("POST", "[]")],
      ["/v1/auth/login", json("POST", "null")],
      ["/v1/auth/login", json("POST", { email: "a@b.co", password: "x", device_token: "0".repeat(32) + ".999999999999999.zz" })],
      ["/v1/auth/login", json("POST", { email: "a@b.co", password: "x", device_token: "0".repeat(32) + ".1.00" })],
      ["/v1/auth/login", json("POST", { email: "a@b.co", password: "x".repeat(256) })],
      ["/v1/auth/login", json("POST", { email: "A@B.CO", password: "\u0000\ud800" })],
      ["/v1/auth/password", json("POST", { current_password: "a", new_password: "b".repeat(300) }, a)],
      ["/v1/auth/password", json("POST", "{", a)],
      ["/v1/admin/users/1e3", json("PATCH", { active: true }, a)],
      ["/v1/admin/users/99999999999999999", json("PATCH", { active: true }, a)],
      ["/v1/admin/users/%ZZ", json("PATCH", { active: true }, a)],
      ["/v1/admin/users", json("POST", { email: "x@y.co", password: "short", role: "root" }, a)],
      ["/v1/admin/users", json("POST", { email: `${unique("e")}@y.co`, password: "Fine-Passw0rd-egret", role: "viewer", client_ids: ["nope/../x"] }, a)],
      ["/v1/admin/api-keys", json("POST", { scope: "ingest", client_id: "%00" }, a)],
      ["/v1/admin/api-keys/%ZZ", { method: "DELETE", headers: { authorization: `Bearer ${a}` } }],
      ["/v1/admin/api-keys/" + "k".repeat(3000), { method: "DELETE", headers: { authorization: `Bearer ${a}` } }],
      ["/v1/admin/clients/%ZZ", json("PATCH", { name: "x" }, a)],
      ["/v1/admin/clients/%ZZ/objects", authed(a)],
      ["/v1/admin/audit?limit=0", authed(a)],
      ["/v1/admin/audit?before=abc&limit=1e9", authed(a)],
      ["/v1/admin/audit?action=.", authed(a)],
      ["/v1/admin/rate-cards", json("PUT", { client_id: "%ZZ", category: "marketing", country: "*", unit_price_micros: 1, currency: "USD" }, a)],
      ["/v1/admin/flush?client_id=%ZZ", json("POST", {}, a)],
      ["/v1/live/ticket", json("POST", { client_id: "" }, a)],
      ["/v1/live/ticket", json("POST", "[]", a)],
      ["/v1/clients/%ZZ", authed(a)],
      ["/v1/clients/%ZZ/counters?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", authed(a)],
      ["/v1/clients/%ZZ/report?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", authed(a)],
      ["/v1/live?ticket=" + "x".repeat(5000), { headers: { upgrade: "websocket" } }],
      ["/v1/clients/x/live?ticket=", { headers: { upgrade: "websocket" } }],
      ["/v1/auth/logout", { method: "POST", headers: { cookie: "zm_session=%ZZ" } }],
      ["/v1/me", { headers: { cookie: "zm_session=" } }],
      ["/v1/me", { headers: { authorization: "Bearer" } }],
      ...weird.map((t): [string, RequestInit] => ["/v1/me", authed(t)]),
      ...weird.map((t): [string, RequestInit] => ["/v1/clients/x/live", authed(t, { headers: { upgrade: "websocket" } })]),
    ];
    const v = await signIn("viewer", []);
    cases.push(["/v1/clients/%ZZ/counters?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", authed(v)]);
    const bad: string[] = [];
    for (const [path, init] of cases) {
      const res = await call(path, init);
      if (res.webSocket) { res.webSocket.accept(); res.webSocket.close(1000, "x"); }
      const text = await res.text();
      if (res.status >= 500) bad.push(`${init.method ?? "GET"} ${path.slice(0, 80)} -> ${res.status} ${text.slice(0, 200)}`);
    }
    expect(bad).toEqual([]);
  });
});
