import { describe, expect, it } from "vitest";
import { app } from "../../workers/app.ts";
import { OPERATIONS } from "../../workers/openapi.ts";
import { admin, authed, call, signIn } from "./helpers.ts";

/** Handler routes of the Hono app as "METHOD /path/{param}" (middleware entries are method ALL; `:key{.+}` patterns drop). */
function appRoutes(): string[] {
  const seen = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    seen.add(`${r.method} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}").replace(/(.)\/$/, "$1")}`);
  }
  return [...seen].sort();
}

describe("OpenAPI document", () => {
  it("is served as OpenAPI 3.1 with every operation", async () => {
    const res = await call("/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(OPERATIONS.map((o) => `${o.method.toUpperCase()} ${o.path}`).sort());
  });

  it("documents exactly the routes the app serves", () => {
    expect(OPERATIONS.map((o) => `${o.method.toUpperCase()} ${o.path}`).sort()).toEqual(appRoutes());
  });

  it("derives request bodies from the validating zod schemas", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[]; properties?: object } }> } }>>;
    };
    const createClient = doc.paths["/v1/admin/clients"]!.post!.requestBody!.content["application/json"]!.schema;
    expect(createClient.required).toEqual(["id", "name"]);
    expect(Object.keys(createClient.properties!)).toEqual(["id", "name", "timezone", "currency", "phone_number_ids", "shards"]);
  });

  it("documents for a signed link the 403 it answers to a link it cannot read, not the validator's 400", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const res = await call("/v1/files/billing/date=2026-11-20/billing.csv?exp=soon&sig=nope");
    expect(res.status).toBe(403);
    expect(Object.keys(doc.paths["/v1/files/{key}"]!.get!.responses).sort()).toEqual(["200", "403", "404", "503"]);
  });

  it("documents the statuses the session, role and input checks answer, on every operation", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const [adminToken, viewerToken] = [await admin(), await signIn("viewer")];
    const seen: string[] = [];
    for (const op of OPERATIONS) {
      // WebSocket routes answer an upgrade, which call() does not make; their own test covers them.
      if (op.path.endsWith("/live")) continue;
      const documented = Object.keys(doc.paths[op.path]![op.method]!.responses);
      const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) => (name === "date" ? "2026-11-20" : name === "key" ? "billing/date=2026-11-20/billing.csv" : "acme"));
      const send = async (token: string | undefined, query: string, body: string | undefined) => {
        const init: RequestInit = { method: op.method.toUpperCase(), headers: body === undefined ? {} : { "content-type": "application/json" }, body };
        const res = await call(`${path}${query}`, token ? authed(token, init) : init);
        await res.arrayBuffer();
        seen.push(`${op.method} ${op.path} ${res.status}`);
        expect(documented, `${op.method.toUpperCase()} ${op.path}${query} answered ${res.status}`).toContain(String(res.status));
      };
      const signedIn = op.security === "session" || op.security === "admin";
      if (signedIn) await send(undefined, "", op.body ? "{}" : undefined);
      if (op.security === "admin") await send(viewerToken, "", op.body ? "{}" : undefined);
      if (signedIn && op.body) await send(adminToken, "", "[]");
      if (op.method !== "get" && (signedIn || op.security === "none")) await send(adminToken, "", JSON.stringify({ padding: "x".repeat(70 * 1024) }));
      if (signedIn && op.query) {
        const params = Object.keys((op.query as { shape?: Record<string, unknown> }).shape ?? {});
        await send(adminToken, `?${params.map((p) => `${p}=%01`).join("&")}`, op.body ? "{}" : undefined);
      }
    }
    // Each kind of check was reached: no valid session, the wrong role, bad input.
    expect(seen.filter((s) => s.endsWith(" 401")).length).toBeGreaterThan(20);
    expect(seen.filter((s) => s.endsWith(" 403")).length).toBeGreaterThan(10);
    expect(seen.filter((s) => s.endsWith(" 400")).length).toBeGreaterThan(10);
    expect(seen.filter((s) => s.endsWith(" 413")).length).toBeGreaterThan(10);
  });
});
