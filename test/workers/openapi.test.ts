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

  it("names every operation once, in camelCase, and the shared schemas once under components", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, { operationId: string }>>; components: { schemas: Record<string, unknown> } };
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(ids).toHaveLength(OPERATIONS.length);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-zA-Z]+$/);
    expect(doc.paths["/v1/clients/{id}/report"]!.get!.operationId).toBe("getClientReport");
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    expect(new Set(refs)).toContain("#/components/schemas/ErrorBody");
    for (const ref of refs) expect(Object.keys(doc.components.schemas).map((id) => `#/components/schemas/${id}`)).toContain(ref);
  });

  it("documents the headers the answers carry, and an error envelope for any other status", async () => {
    type Responses = Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> }>;
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Responses; security: unknown[] }>> };
    const headersOf = (path: string, method: string, code: string) => Object.keys(doc.paths[path]![method]!.responses[code]!.headers ?? {});
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        // onError gives every 503 its Retry-After.
        if (op.responses["503"]) expect(headersOf(path, method, "503"), `${method} ${path}`).toContain("Retry-After");
        expect(op.responses.default!.content!["application/json"]!.schema).toEqual({ $ref: "#/components/schemas/ErrorBody" });
      }
    }
    expect(headersOf("/v1/auth/login", "post", "429")).toEqual(["Retry-After"]);
    expect(headersOf("/v1/auth/password", "post", "429")).toEqual(["Retry-After"]);
    for (const path of ["/v1/auth/login", "/v1/auth/password", "/v1/auth/logout"]) expect(headersOf(path, "post", "200")).toEqual(["Set-Cookie"]);
    for (const path of ["/v1/clients/{id}/report", "/v1/files/{key}"]) {
      expect(headersOf(path, "get", "200")).toEqual(["Content-Disposition"]);
      // Parquet is bytes: a media type without a schema, not a string a generator would decode as text.
      expect(doc.paths[path]!.get!.responses["200"]!.content).toEqual({ "text/csv": { schema: { type: "string" } }, "application/vnd.apache.parquet": {} });
    }
    expect(headersOf("/v1/me", "get", "default")).toEqual(["Allow"]);
    // The ticket alone opens a live socket.
    for (const path of ["/v1/live", "/v1/clients/{id}/live"]) expect(doc.paths[path]!.get!.security).toEqual([{ bearer: [] }, { cookie: [] }, { ticket: [] }]);
  });

  it("says in the schemas what the routes check beyond types", async () => {
    type Params = { name: string; in: string; schema: { type?: string; pattern?: string } }[];
    const doc = (await (await call("/v1/openapi.json")).json()) as {
      paths: Record<string, Record<string, { parameters?: Params; requestBody?: { content: Record<string, { schema: Record<string, unknown> & { properties: Record<string, Record<string, unknown>> } }> } }>>;
    };
    const param = (path: string, method: string, name: string) => doc.paths[path]![method]!.parameters!.find((p) => p.name === name)!.schema;
    expect(param("/v1/billing/{date}/run", "post", "date")).toMatchObject({ type: "string", format: "date" });
    expect(param("/v1/clients/{id}/counters", "get", "id").pattern).toBe("^[A-Za-z0-9][A-Za-z0-9_.-]*$");
    expect(param("/v1/admin/users/{id}", "patch", "id")).toMatchObject({ type: "integer", minimum: 1 });
    expect(JSON.stringify(param("/v1/clients/{id}/report", "get", "status"))).toContain("accepted|sent|delivered|read|failed");
    const body = (path: string) => doc.paths[path]!.patch!.requestBody!.content["application/json"]!.schema;
    expect(body("/v1/admin/clients/{id}").minProperties).toBe(1);
    expect(body("/v1/admin/users/{id}").minProperties).toBe(1);
    expect(body("/v1/admin/clients/{id}").properties.phone_number_ids!.uniqueItems).toBe(true);
    expect(body("/v1/admin/users/{id}").properties.client_ids!.uniqueItems).toBe(true);
  });

  it("documents for a signed link and the webhook handshake the 403 they answer to a query they cannot read, not the validator's 400", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    const res = await call("/v1/files/billing/date=2026-11-20/billing.csv?exp=soon&sig=nope");
    expect(res.status).toBe(403);
    const handshake = await call(`/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=${"9".repeat(300)}`);
    expect(handshake.status).toBe(403);
    expect(Object.keys(doc.paths["/v1/webhooks/whatsapp"]!.get!.responses).sort()).toEqual(["200", "403", "503", "default"]);
    expect(Object.keys(doc.paths["/v1/files/{key}"]!.get!.responses).sort()).toEqual(["200", "403", "404", "503", "default"]);
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
