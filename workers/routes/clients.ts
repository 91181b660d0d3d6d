import type { DrizzleD1Database } from "drizzle-orm/d1";
import { and, asc, gt } from "drizzle-orm";
import { Hono } from "hono";
import { ClientsQuery, TimeRangeQuery, type CategoriesResponse, type ClientSummary, type ClientsResponse, type CountersResponse } from "../../schema/api.ts";
import { clients } from "../../schema/db.ts";
import { DAY_MS, minuteOf } from "../../schema/time.ts";
import type { AppEnv } from "../app-env.ts";
import { authenticate, requireCapability } from "../auth/middleware.ts";
import { seesAllClients } from "../auth/policy.ts";
import { refuseRangeOver } from "../errors.ts";
import { clientCategories, clientCounters, clientToday, type ShardedClient } from "../client-counters.ts";
import { requireClient } from "../client-records.ts";
import { mapBounded } from "../concurrency.ts";
import { inJsonList } from "../json-list.ts";
import { valid } from "../validate.ts";

/** Longest counters range in one request (about 45k minutes). */
export const MAX_COUNTERS_RANGE_MS = 31 * DAY_MS;
/** Parallel Durable Object calls when summing today's totals for many clients. */
const FANOUT = 32;

/** Mounted at /v1/clients: every route needs a session (`authenticate`) and counters access. */
export const clientsApi = new Hono<AppEnv>();
/** The clients the caller may see (a page of them with `limit`), with today's totals in each client's time zone. */
clientsApi.get("/", authenticate, requireCapability("counters"), valid("query", ClientsQuery), async (c) => {
  const user = c.get("user");
  const { start_after, limit } = c.req.valid("query");
  const visible = and(
    seesAllClients(user) ? undefined : inJsonList(clients.id, user.clientIds),
    start_after === undefined ? undefined : gt(clients.id, start_after),
  );
  const query = c.get("db").select().from(clients).where(visible).orderBy(asc(clients.id));
  // One row past the page says whether another page follows, without a count.
  const rows = limit === undefined ? await query : await query.limit(limit + 1);
  const page = limit === undefined ? rows : rows.slice(0, limit);
  const out: ClientSummary[] = await mapBounded(page, FANOUT, (r) => summaryOf(c.env, r));
  return c.json({ clients: out, next: rows.length > page.length ? page[page.length - 1]!.id : null } satisfies ClientsResponse);
});

/** One client the caller may see, with today's totals (a page about one client need not ask for all). */
clientsApi.get("/:id", authenticate, requireCapability("counters", "id"), async (c) => {
  const id = c.req.param("id");
  return c.json(await summaryOf(c.env, await requireClient(c.get("db"), id)));
});

async function summaryOf(env: Env, r: typeof clients.$inferSelect): Promise<ClientSummary> {
  const today = await clientToday(env, r, r.timezone);
  return { client_id: r.id, id: r.id, name: r.name, timezone: r.timezone, currency: r.currency, active: r.active, today };
}

/** Per-minute counts by status, bucketed by occurred_at, one row per minute that has events and overlaps the range. */
clientsApi.get("/:id/counters", authenticate, requireCapability("counters", "id"), valid("query", TimeRangeQuery), async (c) => {
  const { client, from, to } = await countersRange(c.get("db"), c.req.param("id"), c.req.valid("query"));
  return c.json({ client_id: client.id, minutes: await clientCounters(c.env, client, from, to) } satisfies CountersResponse);
});

/** Counts by pricing category and status over the minutes that overlap the range, a row per category that has events. */
clientsApi.get("/:id/categories", authenticate, requireCapability("counters", "id"), valid("query", TimeRangeQuery), async (c) => {
  const { client, from, to } = await countersRange(c.get("db"), c.req.param("id"), c.req.valid("query"));
  const body: CategoriesResponse = { client_id: client.id, from, to, categories: await clientCategories(c.env, client, from, to) };
  return c.json(body);
});

/**
 * The client whose counters a range asks for, and the range as the minute buckets read it: every
 * minute that overlaps [from, to), so the one `from` falls in counts too.
 */
async function countersRange(db: DrizzleD1Database, id: string, range: { from: number; to: number }): Promise<{ client: ShardedClient; from: number; to: number }> {
  refuseRangeOver(MAX_COUNTERS_RANGE_MS, range.to - range.from, "counters of one request cover");
  return { client: await requireClient(db, id), from: minuteOf(range.from), to: range.to };
}
