import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { utcDate } from "../../schema/time.ts";
import { admin, authed, call, createClient, ingestKey, postEvents, postWebhook, signIn, unique, withEnv, withMethods } from "./helpers.ts";
import { LiveSocket } from "./live-helpers.ts";

/**
 * An SDK generated from /v1/openapi.json, trusting it: every answer the routes give must be a
 * documented status, in a documented media type, with a body the documented schema accepts and the
 * headers it reads documented.
 */

type Schema = Record<string, unknown>;
type Doc = {
  paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema: Schema }[]; responses: Record<string, { content?: Record<string, { schema: Schema }>; headers?: Record<string, unknown> }> }>>;
  components: { schemas: Record<string, Schema> };
};

/** A small JSON Schema (2020-12) validator for the keywords the document uses; `$ref`s point into the components. */
function validate(schema: Schema, value: unknown, at: string, errs: string[]): void {
  const fail = (m: string): void => void errs.push(`${at || "<root>"}: ${m}`);
  if (typeof schema.$ref === "string") {
    const target = doc.components.schemas[schema.$ref.replace("#/components/schemas/", "")];
    if (!target) return fail(`unresolved $ref ${schema.$ref}`);
    validate(target, value, at, errs);
  }
  if (schema.anyOf) {
    const ok = (schema.anyOf as Schema[]).some((s) => {
      const e: string[] = [];
      validate(s, value, at, e);
      return e.length === 0;
    });
    if (!ok) fail(`matches no anyOf branch: ${JSON.stringify(value)?.slice(0, 120)}`);
  }
  if (schema.oneOf) {
    const n = (schema.oneOf as Schema[]).filter((s) => {
      const e: string[] = [];
      validate(s, value, at, e);
      return e.length === 0;
    }).length;
    if (n !== 1) fail(`matches ${n} oneOf branches: ${JSON.stringify(value)?.slice(0, 120)}`);
  }
  if ("const" in schema && value !== schema.const) fail(`not const ${JSON.stringify(schema.const)}: ${JSON.stringify(value)}`);
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) fail(`not in enum ${JSON.stringify(schema.enum)}: ${JSON.stringify(value)}`);
  const types = schema.type === undefined ? undefined : [schema.type as string | string[]].flat();
  if (types) {
    const actual = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
    const ok = types.some((type) =>
      type === "integer" ? typeof value === "number" && Number.isInteger(value) : type === "number" ? typeof value === "number" : type === actual,
    );
    if (!ok) return fail(`expected ${types.join("|")}, got ${actual} ${JSON.stringify(value)?.slice(0, 80)}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) fail(`below minimum ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) fail(`above maximum ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) fail(`not above ${schema.exclusiveMinimum}`);
  }
  if (typeof value === "string") {
    const len = [...value].length;
    if (typeof schema.minLength === "number" && len < schema.minLength) fail(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && len > schema.maxLength) fail(`longer than ${schema.maxLength}`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) fail(`does not match ${schema.pattern}: ${value}`);
    if (schema.format === "date" && !/^\d{4}-\d\d-\d\d$/.test(value)) fail(`not a date: ${value}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) fail(`more than ${schema.maxItems} items`);
    if (schema.uniqueItems === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) fail("items not unique");
    if (schema.items) value.forEach((v, i) => validate(schema.items as Schema, v, `${at}[${i}]`, errs));
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) fail(`missing required ${r}`);
    if (typeof schema.minProperties === "number" && Object.keys(obj).length < schema.minProperties) fail(`fewer than ${schema.minProperties} properties`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) validate(props[k], v, `${at}.${k}`, errs);
      else if (schema.additionalProperties === false) fail(`property ${k} not in the schema`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === "object") validate(schema.additionalProperties as Schema, v, `${at}.${k}`, errs);
    }
  }
}

let doc: Doc;
const problems: string[] = [];

/** Statuses no operation lists, which its `default` response stands for. */
const DEFAULT_STATUSES = new Set([405, 500]);
/** Headers an SDK reads, which the answer's documented response must name when the answer sends them. */
const READ_HEADERS = ["retry-after", "content-disposition", "set-cookie", "allow"];

/** Checks one answer against the document; returns its body (JSON parsed, or text). */
async function check(method: string, template: string, res: Response, expectStatus?: number): Promise<unknown> {
  const op = doc.paths[template]?.[method.toLowerCase()];
  const where = `${method} ${template} ${res.status}`;
  const type = res.headers.get("content-type") ?? "";
  // Decoded by hand: a Parquet body is no text, and is only measured.
  const text = new TextDecoder().decode(await res.arrayBuffer());
  if (expectStatus !== undefined && res.status !== expectStatus) problems.push(`${where}: test expected ${expectStatus}: ${text.slice(0, 200)}`);
  if (!op) {
    problems.push(`${where}: operation not documented`);
    return text;
  }
  const documented = op.responses[String(res.status)] ?? (DEFAULT_STATUSES.has(res.status) ? op.responses.default : undefined);
  if (!documented) {
    problems.push(`${where}: status not documented (documented: ${Object.keys(op.responses).join(",")}); body ${text.slice(0, 160)}`);
    return text;
  }
  const namedHeaders = Object.keys(documented.headers ?? {}).map((h) => h.toLowerCase());
  for (const h of READ_HEADERS) if (res.headers.has(h) && !namedHeaders.includes(h)) problems.push(`${where}: sends ${h}: ${res.headers.get(h)} but documents no such header`);
  const mediaTypes = Object.keys(documented.content ?? {});
  if (text.length > 0 && mediaTypes.length === 0) problems.push(`${where}: body of ${type} but the document gives no content for this status: ${text.slice(0, 120)}`);
  if (mediaTypes.length > 0 && !mediaTypes.some((m) => type.split(";")[0]!.trim() === m)) problems.push(`${where}: content-type ${type}, documented ${mediaTypes.join(", ")}`);
  if (!type.startsWith("application/json")) return text;
  const body = JSON.parse(text) as unknown;
  const schema = documented.content?.["application/json"]?.schema;
  if (schema) {
    const errs: string[] = [];
    validate(schema, body, "", errs);
    for (const e of errs) problems.push(`${where}: ${e}`);
  }
  return body;
}

function json(method: string, body: unknown, token?: string): RequestInit {
  const init: RequestInit = { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  return token ? authed(token, init) : init;
}

const DAY = 86_400_000;

describe("the OpenAPI document against real answers", () => {
  beforeAll(async () => {
    doc = (await (await call("/v1/openapi.json")).json()) as Doc;
  });

  it("every answer is documented, with a body its schema accepts", async () => {
    const token = await admin();
    const now = Date.now();
    const past = utcDate(now - 3 * DAY);
    const pastMs = Date.parse(`${past}T12:00:00Z`);

    // ---- ops
    await check("GET", "/health", await call("/health"), 200);
    await check("GET", "/v1/webhooks/whatsapp", await call(`/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${env.WHATSAPP_VERIFY_TOKEN}&hub.challenge=42`), 200);
    await check("GET", "/v1/webhooks/whatsapp", await call(`/v1/webhooks/whatsapp?hub.mode=subscribe`), 403);

    // ---- admin: clients, rate cards, users, keys
    const { id, phones } = await createClient();
    await check("POST", "/v1/admin/clients", await call("/v1/admin/clients", json("POST", { id: unique("c"), name: "Made here", phone_number_ids: [unique("pn")] }, token)), 201);
    await check("POST", "/v1/admin/clients", await call("/v1/admin/clients", json("POST", { id, name: "again" }, token)), 409);
    await check("GET", "/v1/admin/clients", await call("/v1/admin/clients", authed(token)), 200);
    await check("PATCH", "/v1/admin/clients/{id}", await call(`/v1/admin/clients/${id}`, json("PATCH", { name: "Renamed" }, token)), 200);
    await check("PATCH", "/v1/admin/clients/{id}", await call(`/v1/admin/clients/nope-${unique("x")}`, json("PATCH", { name: "Renamed" }, token)), 404);
    await check("GET", "/v1/admin/clients/{id}/objects", await call(`/v1/admin/clients/${id}/objects`, authed(token)), 200);
    await check("PUT", "/v1/admin/rate-cards", await call("/v1/admin/rate-cards", json("PUT", { client_id: null, category: "marketing", country: "*", unit_price_micros: 62_500, currency: "BRL" }, token)), 200);
    await check("PUT", "/v1/admin/rate-cards", await call("/v1/admin/rate-cards", json("PUT", { client_id: id, category: "utility", country: "BR", unit_price_micros: 8_000, currency: "BRL", valid_from: null }, token)), 200);
    await check("GET", "/v1/admin/rate-cards", await call("/v1/admin/rate-cards", authed(token)), 200);
    const email = `${unique("u")}@example.com`;
    const password = "correct horse battery staple";
    const created = (await check("POST", "/v1/admin/users", await call("/v1/admin/users", json("POST", { email, password, role: "viewer", client_ids: [id] }, token)), 201)) as { id: number };
    await check("GET", "/v1/admin/users", await call("/v1/admin/users", authed(token)), 200);
    await check("PATCH", "/v1/admin/users/{id}", await call(`/v1/admin/users/${created.id}`, json("PATCH", { client_ids: [id] }, token)), 200);
    await check("PATCH", "/v1/admin/users/{id}", await call(`/v1/admin/users/abc`, json("PATCH", { active: true }, token)), 404);
    const key = (await check("POST", "/v1/admin/api-keys", await call("/v1/admin/api-keys", json("POST", { scope: "ingest", label: "sdk" }, token)), 201)) as { id: string };
    await check("GET", "/v1/admin/api-keys", await call("/v1/admin/api-keys", authed(token)), 200);
    await check("DELETE", "/v1/admin/api-keys/{id}", await call(`/v1/admin/api-keys/${key.id}`, authed(token, { method: "DELETE" })), 200);
    await check("DELETE", "/v1/admin/api-keys/{id}", await call(`/v1/admin/api-keys/${key.id}`, authed(token, { method: "DELETE" })), 200);
    await check("DELETE", "/v1/admin/api-keys/{id}", await call(`/v1/admin/api-keys/nokey`, authed(token, { method: "DELETE" })), 404);

    // ---- ingest
    const k = await ingestKey();
    const event = (n: number, status = "sent", at = pastMs) => ({
      event_id: `e-${n}-${unique("e")}`, message_id: `m-${n}`, client_id: id, status, occurred_at: at, recipient: "5511987654321",
      category: "marketing", billable: true, pricing_type: "regular", country: "BR",
    });
    await check("POST", "/v1/ingest/events", await postEvents([event(1), event(2, "delivered"), { ...event(3), status: "bogus" }, event(4, "sent", now - 60_000)], k), 200);
    await check("POST", "/v1/ingest/events", await postEvents({ events: [event(5)] }, k), 200);
    await check("POST", "/v1/ingest/events", await postEvents({ records: [] }, k), 400);
    await check("POST", "/v1/ingest/events", await postEvents([event(6)], "wrong"), 401);
    await check("POST", "/v1/ingest/events", await postEvents("a=b", k, "application/x-www-form-urlencoded"), 415);
    const scoped = await ingestKey(id);
    await check("POST", "/v1/ingest/events", await postEvents([{ ...event(7), client_id: "someone-else" }], scoped), 403);

    // ---- webhooks
    const wamid = `wamid.${unique("m")}`;
    await check("POST", "/v1/webhooks/whatsapp", await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: wamid, status: "sent", timestamp: Math.floor(pastMs / 1000) })] }])), 200);
    await check("POST", "/v1/webhooks/whatsapp", await postWebhook("{nope"), 400);
    await check("POST", "/v1/webhooks/whatsapp", await postWebhook({ object: "x", entry: [] }, "sha256=00"), 401);

    // ---- auth
    const login = (await check("POST", "/v1/auth/login", await call("/v1/auth/login", json("POST", { email, password })), 200)) as { token: string };
    await check("POST", "/v1/auth/login", await call("/v1/auth/login", json("POST", { email, password: "wrong password" })), 401);
    await check("POST", "/v1/auth/login", await call("/v1/auth/login", json("POST", { email: "not-an-email", password: "x" })), 400);
    await check("GET", "/v1/me", await call("/v1/me", authed(login.token)), 200);
    const changed = (await check("POST", "/v1/auth/password", await call("/v1/auth/password", json("POST", { current_password: password, new_password: "another long passphrase" }, login.token)), 200)) as { token: string };
    await check("POST", "/v1/auth/logout", await call("/v1/auth/logout", authed(changed.token, { method: "POST" })), 200);
    await check("GET", "/v1/me", await call("/v1/me", authed(changed.token)), 401);

    // ---- reads
    await check("GET", "/v1/clients", await call("/v1/clients", authed(token)), 200);
    await check("GET", "/v1/clients", await call("/v1/clients?limit=1", authed(token)), 200);
    await check("GET", "/v1/clients", await call("/v1/clients?limit=0", authed(token)), 400);
    await check("GET", "/v1/clients/{id}", await call(`/v1/clients/${id}`, authed(token)), 200);
    await check("GET", "/v1/clients/{id}", await call(`/v1/clients/nope-${unique("x")}`, authed(token)), 404);
    const viewer = await signIn("viewer", []);
    await check("GET", "/v1/clients/{id}", await call(`/v1/clients/${id}`, authed(viewer)), 403);
    const range = `from=${past}&to=${utcDate(now + DAY)}`;
    await check("GET", "/v1/clients/{id}/counters", await call(`/v1/clients/${id}/counters?${range}`, authed(token)), 200);
    await check("GET", "/v1/clients/{id}/counters", await call(`/v1/clients/${id}/counters?from=2026-01-01&to=2026-12-01`, authed(token)), 400);
    await check("GET", "/v1/clients/{id}/categories", await call(`/v1/clients/${id}/categories?${range}`, authed(token)), 200);
    const csv = await call(`/v1/clients/${id}/report?${range}`, authed(token));
    expect(csv.headers.get("content-disposition")).toMatch(/^attachment; filename=/);
    await check("GET", "/v1/clients/{id}/report", csv, 200);
    await check("GET", "/v1/clients/{id}/report", await call(`/v1/clients/${id}/report?${range}&format=parquet&status=sent,delivered`, authed(token)), 200);
    await check("GET", "/v1/clients/{id}/report", await call(`/v1/clients/${id}/report?${range}&status=bogus`, authed(token)), 400);

    // ---- lake, live, dead letters, audit
    await check("POST", "/v1/admin/flush", await call(`/v1/admin/flush?client_id=${id}`, authed(token, { method: "POST" })), 200);
    await check("POST", "/v1/admin/flush", await call(`/v1/admin/flush?client_id=nope-${unique("x")}`, authed(token, { method: "POST" })), 404);
    await check("POST", "/v1/admin/lake/compact", await call(`/v1/admin/lake/compact?client_id=${id}&date=${past}`, authed(token, { method: "POST" })), 200);
    await check("POST", "/v1/admin/lake/compact", await call(`/v1/admin/lake/compact?client_id=${id}&date=${utcDate(now)}`, authed(token, { method: "POST" })), 400);
    const erasure = (await check("POST", "/v1/admin/clients/{id}/erasures", await call(`/v1/admin/clients/${id}/erasures`, json("POST", { recipient: "5511999990000" }, token)), 202)) as { id: string };
    await check("POST", "/v1/admin/clients/{id}/erasures", await call(`/v1/admin/clients/${id}/erasures`, json("POST", { recipient: "not a number" }, token)), 400);
    await check("POST", "/v1/admin/clients/{id}/erasures", await call(`/v1/admin/clients/nope-${unique("x")}/erasures`, json("POST", { recipient: "5511999990000" }, token)), 404);
    await check("GET", "/v1/admin/clients/{id}/erasures/{erasure_id}", await call(`/v1/admin/clients/${id}/erasures/${erasure.id}`, authed(token)), 200);
    await check("GET", "/v1/admin/clients/{id}/erasures/{erasure_id}", await call(`/v1/admin/clients/${id}/erasures/${crypto.randomUUID()}`, authed(token)), 404);
    await check("POST", "/v1/live/ticket", await call("/v1/live/ticket", json("POST", { client_id: id }, token)), 200);
    await check("POST", "/v1/live/ticket", await call("/v1/live/ticket", authed(token, { method: "POST" })), 200);
    await check("GET", "/v1/live", await call("/v1/live", authed(token)), 426);
    await check("GET", "/v1/clients/{id}/live", await call(`/v1/clients/${id}/live`, authed(token)), 426);
    await check("GET", "/v1/admin/dead-letters", await call(`/v1/admin/dead-letters?date=${utcDate(now)}`, authed(token)), 200);
    await check("GET", "/v1/admin/dead-letters", await call(`/v1/admin/dead-letters?date=${utcDate(now)}&limit=1`, authed(token)), 200);
    await check("POST", "/v1/admin/dead-letters/replay", await call(`/v1/admin/dead-letters/replay?date=${utcDate(now)}`, authed(token, { method: "POST" })), 200);
    await check("GET", "/v1/admin/audit", await call("/v1/admin/audit?limit=5", authed(token)), 200);

    // ---- billing and signed files
    await check("POST", "/v1/billing/{date}/run", await call(`/v1/billing/${past}/run`, authed(token, { method: "POST" })), 200);
    await check("POST", "/v1/billing/{date}/run", await call(`/v1/billing/2026-13-01/run`, authed(token, { method: "POST" })), 400);
    await check("GET", "/v1/billing", await call(`/v1/billing?date=${past}`, authed(token)), 200);
    await check("GET", "/v1/billing", await call(`/v1/billing?date=${past}&client_id=${id}`, authed(token)), 200);
    await check("GET", "/v1/billing", await call(`/v1/billing?date=2000-01-02`, authed(token)), 200);
    await check("GET", "/v1/billing/summary", await call(`/v1/billing/summary?from=${past}&to=${past}`, authed(token)), 200);
    const dl = (await check("GET", "/v1/billing/{date}/download", await call(`/v1/billing/${past}/download`, authed(token)), 200)) as { url: string };
    await check("GET", "/v1/billing/{date}/download", await call(`/v1/billing/2001-01-01/download`, authed(token)), 404);
    await check("GET", "/v1/billing/{date}/reconcile", await call(`/v1/billing/${past}/reconcile`, authed(token)), 200);
    await check("GET", "/v1/billing/{date}/reconcile", await call(`/v1/billing/${past}/reconcile?client_id=${id}`, authed(token)), 200);
    const file = new URL(dl.url);
    await check("GET", "/v1/files/{key}", await call(`${file.pathname}${file.search}`), 200);
    await check("GET", "/v1/files/{key}", await call(`${file.pathname}?exp=1&sig=${"0".repeat(64)}`), 403);
    // An SDK fills {key} as one path segment: its slashes percent-encoded.
    const encoded = `/v1/files/${encodeURIComponent(decodeURIComponent(file.pathname.slice("/v1/files/".length)))}${file.search}`;
    const viaSdk = await call(encoded);
    if (viaSdk.status !== 200) problems.push(`GET /v1/files/{key} with the key as an SDK encodes it (${encoded.slice(0, 80)}…): ${viaSdk.status} ${await viaSdk.clone().text()}`);
    await check("GET", "/v1/files/{key}", viaSdk);

    // ---- a path served with a method it does not take: the default response of the path's operation
    const put = await call("/v1/clients", authed(token, { method: "PUT" }));
    expect(put.headers.get("allow")).toBe("GET, HEAD");
    await check("GET", "/v1/clients", put, 405);

    expect(problems).toEqual([]);
  });

  it("headers, request bodies, live messages and other edges", async () => {
    problems.length = 0;
    const token = await admin();
    const now = Date.now();
    const { id } = await createClient();
    const opOf = (method: string, path: string) => doc.paths[path]![method]! as unknown as {
      requestBody?: { content: Record<string, { schema: Schema }> };
      responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema: Schema }> }>;
    };
    const docAccepts = (method: string, path: string, body: unknown) => {
      const errs: string[] = [];
      validate(opOf(method, path).requestBody!.content["application/json"]!.schema, body, "", errs);
      return errs;
    };

    // Retry-After on the login lockout's 429
    const email = `${unique("locked")}@example.com`;
    let locked: Response | undefined;
    for (let i = 0; i < 12 && !locked; i++) {
      const res = await call("/v1/auth/login", json("POST", { email, password: "wrong password" }));
      if (res.status === 429) locked = res;
      else await res.arrayBuffer();
    }
    expect(locked?.headers.get("retry-after")).toBe("60");
    await check("POST", "/v1/auth/login", locked!, 429);

    // A store that does not answer: every 503 says when to retry, the session check's too.
    const downDb = withMethods(env.DB, { prepare: () => { throw new Error("D1_ERROR: Network connection lost."); } } as Partial<D1Database>);
    const quiet = vi.spyOn(console, "error").mockImplementation(() => {});
    const down = await withEnv({ DB: downDb }, "/v1/admin/clients", authed(token)).finally(() => quiet.mockRestore());
    expect(down.headers.get("retry-after")).toBe("1");
    expect(((await check("GET", "/v1/admin/clients", down, 503)) as { error: { code: string } }).error.code).toBe("session_store_unavailable");

    // Ingest: a single Connect-wrapped record, which the 400's description says is read
    const k = await ingestKey();
    const ev = { event_id: unique("e"), message_id: unique("m"), client_id: id, status: "sent", occurred_at: now - 60_000, recipient: "5511987654321" };
    const connect = { value: ev, topic: "t", partition: 0, offset: 1 };
    const docErrs = docAccepts("post", "/v1/ingest/events", connect);
    const res = await postEvents(connect, k);
    const body = await check("POST", "/v1/ingest/events", res);
    if (res.status === 200 && docErrs.length > 0) problems.push(`POST /v1/ingest/events: one Connect record is accepted (${JSON.stringify(body)}) but the request schema refuses it (${docErrs.length} errors, e.g. ${docErrs[0]})`);

    // PATCH {} is valid per the request schema
    // The PATCHes refuse {} ("nothing to update") and a list naming an id twice, as their schemas say
    const patched = await call(`/v1/admin/clients/${id}`, json("PATCH", {}, token));
    await check("PATCH", "/v1/admin/clients/{id}", patched, 400);
    expect(docAccepts("patch", "/v1/admin/clients/{id}", {})).not.toEqual([]);
    expect(docAccepts("patch", "/v1/admin/users/{id}", {})).not.toEqual([]);
    const twice = { phone_number_ids: ["pn-1", "pn-1"] };
    await check("PATCH", "/v1/admin/clients/{id}", await call(`/v1/admin/clients/${id}`, json("PATCH", twice, token)), 400);
    expect(docAccepts("patch", "/v1/admin/clients/{id}", twice)).not.toEqual([]);
    expect(docAccepts("patch", "/v1/admin/users/{id}", { client_ids: [id, id] })).not.toEqual([]);
    expect(docAccepts("patch", "/v1/admin/users/{id}", { client_ids: [id] })).toEqual([]);

    // The report's status filter in its repeated form
    const range = `from=${utcDate(now - DAY)}&to=${utcDate(now + DAY)}`;
    await check("GET", "/v1/clients/{id}/report", await call(`/v1/clients/${id}/report?${range}&status=sent&status=failed`, authed(token)), 200);

    // A path that is not UTF-8
    for (const [method, path, template] of [["GET", "/v1/clients/%E0%A4%A", "/v1/clients/{id}"], ["DELETE", "/v1/admin/api-keys/%ZZ", "/v1/admin/api-keys/{id}"]] as const) {
      await check(method, template, await call(path, authed(token, { method })));
    }

    // Live: the first message of each stream against the 101 schema
    for (const [path, template] of [[`/v1/clients/${id}/live`, "/v1/clients/{id}/live"], ["/v1/live", "/v1/live"]] as const) {
      const socket = await LiveSocket.connect(path, { authorization: `Bearer ${token}` });
      const first = await socket.next<unknown>();
      socket.close();
      const errs: string[] = [];
      validate(opOf("get", template).responses["101"]!.content!["application/json"]!.schema, first, "", errs);
      for (const e of errs) problems.push(`GET ${template} 101 message: ${e}`);
    }

    // Live with a ticket alone: the document's security lists the ticket as one way in
    const ticket = (await (await call("/v1/live/ticket", json("POST", { client_id: id }, token))).json()) as { ticket: string };
    const byTicket = await LiveSocket.open(`/v1/clients/${id}/live?ticket=${ticket.ticket}`);
    expect(byTicket).not.toBeInstanceOf(Response);
    if (!(byTicket instanceof Response)) byTicket.close();
    for (const path of ["/v1/clients/{id}/live", "/v1/live"]) {
      expect((doc.paths[path]!.get! as unknown as { security: unknown }).security).toContainEqual({ ticket: [] });
    }

    expect(problems).toEqual([]);
  });

  it("odd path parameters and refusals answer documented statuses", async () => {
    problems.length = 0;
    const token = await admin();
    const { id } = await createClient();
    const viewer = await signIn("viewer", [id]);
    const odd = ["x".repeat(300), "ação", "%00", "a%2Fb", "-x", "1e3", "0", "ACME"];
    for (const op of Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => ({ path, method })))) {
      if (!op.path.includes("{") || op.path.endsWith("/live") || op.path.startsWith("/v1/files")) continue;
      for (const value of odd) {
        const path = op.path.replace(/\{(\w+)\}/g, () => value);
        const needsBody = ["post", "patch", "put"].includes(op.method);
        const body = op.path.includes("/admin/users/") ? { active: true } : op.path.includes("/admin/clients/") ? { name: "x" } : undefined;
        const init: RequestInit = { method: op.method.toUpperCase(), ...(needsBody && body ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}) };
        await check(op.method.toUpperCase(), op.path, await call(path, authed(token, init)));
      }
    }
    const cases: [string, string, string, RequestInit, number][] = [
      ["POST", "/v1/billing/{date}/run", "/v1/billing/2100-01-01/run", { method: "POST" }, 409],
      ["GET", "/v1/billing/summary", "/v1/billing/summary?from=2026-01-01&to=2026-12-01", {}, 400],
      ["GET", "/v1/clients/{id}/report", `/v1/clients/${id}/report?from=2024-01-01&to=2026-01-01`, {}, 400],
      ["PATCH", "/v1/admin/clients/{id}", `/v1/admin/clients/${id}`, json("PATCH", { shards: 1, timezone: "utc" }), 400],
      ["POST", "/v1/admin/users", "/v1/admin/users", json("POST", { email: `${unique("w")}@example.com`, password: "aaaaaaaaaa", role: "viewer" }), 400],
      ["POST", "/v1/auth/password", "/v1/auth/password", json("POST", { current_password: "nope-nope", new_password: "a new long password" }), 403],
      ["GET", "/v1/billing/{date}/download", "/v1/billing/2026-11-20/download?revision=7", {}, 404],
      ["GET", "/v1/billing/{date}/reconcile", `/v1/billing/2026-11-20/reconcile?client_id=nope-${unique("n")}`, {}, 404],
      ["GET", "/v1/billing", `/v1/billing?date=2026-11-20&client_id=nope-${unique("n")}`, {}, 404],
    ];
    for (const [method, template, path, init, expected] of cases) await check(method, template, await call(path, authed(token, init)), expected);
    await check("POST", "/v1/live/ticket", await call("/v1/live/ticket", json("POST", { client_id: "other" }, viewer)), 403);
    await check("GET", "/v1/billing", await call("/v1/billing?date=2026-11-20", authed(viewer)), 403);
    await check("GET", "/v1/clients/{id}/report", await call(`/v1/clients/${id}/report?from=2026-11-20&to=2026-11-21`, authed(await signIn("finance"))), 403);
    expect(problems).toEqual([]);
  });

  it("what a generator reads from the document itself", async () => {
    const found: string[] = [];
    const ops = Object.entries(doc.paths).flatMap(([path, o]) => Object.entries(o).map(([method, op]) => ({ path, method, op: op as Record<string, unknown> })));
    const withoutId = ops.filter((o) => !o.op.operationId).length;
    if (withoutId > 0) found.push(`${withoutId} of ${ops.length} operations have no operationId`);
    // The validator above is no rubber stamp: it refuses what the schemas refuse, through a $ref too.
    const errorBody = doc.paths["/v1/me"]!.get!.responses["401"]!.content!["application/json"]!.schema;
    const refused: string[] = [];
    validate(errorBody, { error: { code: 1 } }, "", refused);
    if (refused.length !== 2) found.push(`the validator let a bad error body through: ${JSON.stringify(refused)}`);
    // The handshake answers 403 to every query it cannot read: does the document promise a 400?
    const bad = await call("/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=" + "9".repeat(300));
    await bad.arrayBuffer();
    if (bad.status === 403 && doc.paths["/v1/webhooks/whatsapp"]!.get!.responses["400"]) found.push("GET /v1/webhooks/whatsapp documents a 400 (validation_failed) it never answers: an invalid query is 403");
    const status = doc.paths["/v1/clients/{id}/report"]!.get!.parameters!.find((p) => p.name === "status")!.schema;
    if (!JSON.stringify(status).includes("delivered")) found.push(`GET /v1/clients/{id}/report: the status parameter's schema names no status: ${JSON.stringify(status)}`);
    // An api key's id and a file's key are whatever the API issued; dates, client ids and user ids are checked.
    const checked = (path: string, name: string) => name === "date" || (name === "id" && !path.startsWith("/v1/admin/api-keys/"));
    const pathParams = ops.flatMap((o) => ((o.op.parameters ?? []) as { in: string; name: string; schema: Schema }[]).filter((p) => p.in === "path" && checked(o.path, p.name) && JSON.stringify(p.schema) === '{"type":"string"}').map((p) => `${o.method} ${o.path} {${p.name}}`));
    if (pathParams.length > 0) found.push(`${pathParams.length} path parameters are a bare string (the routes check dates, client ids, user ids): ${pathParams.slice(0, 3).join("; ")}…`);
    expect(found).toEqual([]);
  });
});
