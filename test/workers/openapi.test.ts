import { describe, expect, it } from "vitest";
import { app } from "../../workers/app.ts";
import { OPERATIONS } from "../../workers/openapi.ts";
import { call } from "./helpers.ts";

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
});
