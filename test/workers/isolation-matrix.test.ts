import { beforeAll, describe, expect, it } from "vitest";
import { authed, call, createClient, signIn } from "./helpers.ts";

/**
 * Who may do what, for every authenticated route and WebSocket: roles × routes × own/other client.
 * "allow" means the route did not refuse on identity or scope (any status but 401/403); "deny" means 403;
 * without credentials every cell is 401.
 */
type Role = "admin" | "finance" | "viewer";
type Cell = "allow" | "deny";
interface Route {
  name: string;
  method: string;
  path: (client: string) => string;
  body?: unknown;
  websocket?: true;
  /** Per role; a viewer's own-client and other-client cells differ on scoped routes. */
  expect: Record<Exclude<Role, "viewer">, Cell> & { viewerOwn: Cell; viewerOther: Cell };
}

const DAY = "2026-11-20";
const RANGE = "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z";
const all: Route["expect"] = { admin: "allow", finance: "allow", viewerOwn: "allow", viewerOther: "allow" };
const adminOnly: Route["expect"] = { admin: "allow", finance: "deny", viewerOwn: "deny", viewerOther: "deny" };
const financeAndAdmin: Route["expect"] = { admin: "allow", finance: "allow", viewerOwn: "deny", viewerOther: "deny" };

const ROUTES: Route[] = [
  { name: "me", method: "GET", path: () => "/v1/me", expect: all },
  { name: "list clients", method: "GET", path: () => "/v1/clients", expect: all },
  { name: "one client", method: "GET", path: (c) => `/v1/clients/${c}`, expect: { admin: "allow", finance: "allow", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "counters", method: "GET", path: (c) => `/v1/clients/${c}/counters?${RANGE}`, expect: { admin: "allow", finance: "allow", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "counts by category", method: "GET", path: (c) => `/v1/clients/${c}/categories?${RANGE}`, expect: { admin: "allow", finance: "allow", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "report (personal data)", method: "GET", path: (c) => `/v1/clients/${c}/report?${RANGE}&format=csv`, expect: { admin: "allow", finance: "deny", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "client live socket", method: "GET", websocket: true, path: (c) => `/v1/clients/${c}/live`, expect: { admin: "allow", finance: "allow", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "overview live socket", method: "GET", websocket: true, path: () => "/v1/live", expect: all },
  { name: "live ticket for a client", method: "POST", path: () => "/v1/live/ticket", body: "client", expect: { admin: "allow", finance: "allow", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "billing lines", method: "GET", path: () => `/v1/billing?date=${DAY}`, expect: financeAndAdmin },
  { name: "billing download", method: "GET", path: () => `/v1/billing/${DAY}/download?format=csv`, expect: financeAndAdmin },
  { name: "billing run", method: "POST", path: () => `/v1/billing/${DAY}/run`, expect: adminOnly },
  { name: "billing reconcile", method: "GET", path: () => `/v1/billing/${DAY}/reconcile`, expect: adminOnly },
  { name: "flush", method: "POST", path: () => "/v1/admin/flush", expect: adminOnly },
  { name: "lake compaction", method: "POST", path: (c) => `/v1/admin/lake/compact?client_id=${c}&date=${DAY}`, expect: adminOnly },
  { name: "admin clients", method: "GET", path: () => "/v1/admin/clients", expect: adminOnly },
  { name: "admin client objects", method: "GET", path: (c) => `/v1/admin/clients/${c}/objects`, expect: adminOnly },
  { name: "admin erase a recipient", method: "POST", path: (c) => `/v1/admin/clients/${c}/erasures`, body: { recipient: "5511999990000" }, expect: adminOnly },
  { name: "admin erasure state", method: "GET", path: (c) => `/v1/admin/clients/${c}/erasures/${crypto.randomUUID()}`, expect: adminOnly },
  { name: "admin update client", method: "PATCH", path: (c) => `/v1/admin/clients/${c}`, body: { name: "renamed" }, expect: adminOnly },
  { name: "admin rate cards", method: "GET", path: () => "/v1/admin/rate-cards", expect: adminOnly },
  { name: "admin users", method: "GET", path: () => "/v1/admin/users", expect: adminOnly },
  { name: "admin api keys", method: "GET", path: () => "/v1/admin/api-keys", expect: adminOnly },
  { name: "billing summary", method: "GET", path: () => "/v1/billing/summary?from=2026-11-01&to=2026-11-30", expect: financeAndAdmin },
  { name: "billing summary of a client", method: "GET", path: (c) => `/v1/billing/summary?from=2026-11-01&to=2026-11-30&client_id=${c}`, expect: financeAndAdmin },
  { name: "billing download, HEAD", method: "HEAD", path: () => `/v1/billing/${DAY}/download?format=csv`, expect: financeAndAdmin },
  { name: "report, HEAD", method: "HEAD", path: (c) => `/v1/clients/${c}/report?${RANGE}&format=csv`, expect: { admin: "allow", finance: "deny", viewerOwn: "allow", viewerOther: "deny" } },
  { name: "admin audit", method: "GET", path: () => "/v1/admin/audit", expect: adminOnly },
  { name: "admin dead letters", method: "GET", path: () => `/v1/admin/dead-letters?date=${DAY}`, expect: adminOnly },
  { name: "admin dead-letter replay", method: "POST", path: () => `/v1/admin/dead-letters/replay?date=${DAY}`, body: {}, expect: adminOnly },
  { name: "admin create user", method: "POST", path: () => "/v1/admin/users", body: { email: "matrix@example.com", password: "Fine-Passw0rd-egret", role: "viewer" }, expect: adminOnly },
  { name: "admin update user", method: "PATCH", path: () => "/v1/admin/users/1", body: {}, expect: adminOnly },
  { name: "admin create api key", method: "POST", path: () => "/v1/admin/api-keys", body: { scope: "ingest" }, expect: adminOnly },
  { name: "admin revoke api key", method: "DELETE", path: () => "/v1/admin/api-keys/matrix", expect: adminOnly },
  { name: "admin put rate card", method: "PUT", path: () => "/v1/admin/rate-cards", body: { client_id: null, category: "marketing", country: "*", unit_price_micros: 1, currency: "USD" }, expect: adminOnly },
  { name: "admin create client", method: "POST", path: () => "/v1/admin/clients", body: { id: "matrix-new", name: "matrix" }, expect: adminOnly },
];

let own: string;
let other: string;
const tokens = {} as Record<Role, string>;

beforeAll(async () => {
  own = (await createClient()).id;
  other = (await createClient()).id;
  tokens.admin = await signIn("admin");
  tokens.finance = await signIn("finance");
  tokens.viewer = await signIn("viewer", [own]);
});

async function request(route: Route, client: string, token?: string): Promise<number> {
  const headers: Record<string, string> = {};
  if (route.websocket) headers.upgrade = "websocket";
  let body: string | undefined;
  if (route.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(route.body === "client" ? { client_id: client } : route.body);
  }
  const init: RequestInit = { method: route.method, headers, body };
  const res = await call(route.path(client), token ? authed(token, init) : init);
  if (res.webSocket) {
    res.webSocket.accept();
    res.webSocket.close(1000, "matrix");
  } else {
    await res.arrayBuffer();
  }
  return res.status;
}

function check(status: number, cell: Cell, label: string): void {
  if (cell === "deny") expect(status, label).toBe(403);
  else expect([401, 403], `${label} got ${status}`).not.toContain(status);
}

describe("tenant isolation matrix", () => {
  for (const route of ROUTES) {
    it(`${route.name}: roles × own/other client`, async () => {
      check(await request(route, own, tokens.admin), route.expect.admin, "admin");
      check(await request(route, own, tokens.finance), route.expect.finance, "finance");
      check(await request(route, own, tokens.viewer), route.expect.viewerOwn, "viewer, own client");
      check(await request(route, other, tokens.viewer), route.expect.viewerOther, "viewer, other client");
      expect(await request(route, own), "anonymous").toBe(401);
    });
  }

  it("refuses for the role's lack before the client's: finance is told a report needs report access", async () => {
    const refusal = async (token: string, client: string) =>
      ((await (await call(`/v1/clients/${client}/report?${RANGE}&format=csv`, authed(token))).json()) as { error: { message: string } }).error.message;
    expect(await refusal(tokens.finance, own)).toBe("requires report access");
    expect(await refusal(tokens.viewer, other)).toBe(`no access to client ${other}`);
  });

  it("never lists another client to a viewer, and every client to admin and finance", async () => {
    const listed = async (token: string) => ((await (await call("/v1/clients", authed(token))).json()) as { clients: { id: string }[] }).clients.map((c) => c.id);
    expect(await listed(tokens.viewer)).toEqual([own]);
    for (const role of ["admin", "finance"] as const) expect(await listed(tokens[role]), role).toEqual(expect.arrayContaining([own, other]));
  });
});
