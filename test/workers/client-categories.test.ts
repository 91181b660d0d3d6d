import { describe, expect, it } from "vitest";
import type { CategoriesResponse } from "../../schema/api.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { admin, authed, call, createClient, unique } from "./helpers.ts";
import { flush } from "./lake-fixtures.ts";

const T = Date.UTC(2026, 10, 12, 14, 0, 0);
const MIN = 60_000;

async function categories(clientId: string, from: string, to: string) {
  const res = await call(`/v1/clients/${clientId}/categories?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, authed(await admin()));
  return { status: res.status, body: (await res.json()) as CategoriesResponse & { error?: { code: string } } };
}

const zero = { accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };

describe("counts by category", () => {
  it("sum every minute of the range by category and status, flushed counters and pending ones alike, none last", async () => {
    const { id } = await createClient();
    const m = () => unique("wamid");
    const [a, b, c] = [m(), m(), m()];
    await ingest([
      status(id, a, "sent", T, { category: "utility" }),
      status(id, a, "delivered", T + 30_000, { category: "utility" }),
      status(id, b, "sent", T + MIN, { category: "marketing" }),
      status(id, c, "failed", T + 2 * MIN, { category: null, billable: null, pricing_type: null }),
      // A failure without pricing of a message known to be utility counts as utility, and bills nothing.
      status(id, a, "failed", T + 50_000, { category: null, billable: null, pricing_type: null }),
    ]);
    // Into SQLite's minute rows, so the next events stay pending in memory and both are read.
    expect((await flush(id)).status).toBe(200);
    const d = m();
    await ingest([status(id, d, "sent", T + 2 * MIN, { category: "utility" }), status(id, b, "read", T + 3 * MIN, { category: "marketing" })]);

    const { status: code, body } = await categories(id, "2026-11-12T14:00:00Z", "2026-11-12T15:00:00Z");
    expect(code).toBe(200);
    expect(body).toEqual({
      client_id: id,
      from: T,
      to: T + 60 * MIN,
      categories: [
        { category: "marketing", ...zero, sent: 1, read: 1 },
        { category: "utility", ...zero, sent: 2, delivered: 1, failed: 1 },
        { category: null, ...zero, failed: 1 },
      ],
    });
  });

  it("count the minute `from` falls in and nothing at or after `to`", async () => {
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "sent", T + 10_000), status(id, unique("wamid"), "sent", T + MIN)]);
    const { body } = await categories(id, "2026-11-12T14:00:59Z", "2026-11-12T14:01:00Z");
    expect(body.from).toBe(T);
    expect(body.categories).toEqual([{ category: "marketing", ...zero, sent: 1 }]);
    expect((await categories(id, "2026-11-12T15:00:00Z", "2026-11-12T16:00:00Z")).body.categories).toEqual([]);
  });

  it("sum a sharded client's shards", async () => {
    const { id } = await createClient({ shards: 3 });
    const ids = Array.from({ length: 30 }, () => unique("wamid"));
    await ingest(ids.map((m, i) => status(id, m, "sent", T, { category: i % 2 ? "utility" : "authentication" })));
    expect((await categories(id, "2026-11-12", "2026-11-13")).body.categories).toEqual([
      { category: "utility", ...zero, sent: 15 },
      { category: "authentication", ...zero, sent: 15 },
    ]);
  });

  it("refuse ranges over 31 days (31 exactly are fine), backwards ranges and unknown clients, as the counters do", async () => {
    const { id } = await createClient();
    const long = await categories(id, "2026-10-01", "2026-11-02");
    expect([long.status, long.body.error?.code]).toEqual([400, "range_too_large"]);
    expect((await categories(id, "2026-10-01", "2026-11-01")).status).toBe(200);
    // The limit is of the range asked, not of the minutes read: 31 days from mid-minute are fine too.
    expect((await categories(id, "2026-10-01T00:00:30Z", "2026-11-01T00:00:30Z")).status).toBe(200);
    expect((await categories(id, "2026-11-02", "2026-11-01")).status).toBe(400);
    // An empty range is a mistake too, not a 200 with nothing in it.
    expect((await categories(id, "2026-11-01T00:00:00Z", "2026-11-01")).status).toBe(400);
    const missing = await categories(unique("nobody"), "2026-11-01", "2026-11-02");
    expect([missing.status, missing.body.error?.code]).toEqual([404, "client_not_found"]);
  });

  it("take a local month whose clocks go back within it, which lasts 31 days and the hour given back", async () => {
    const { id } = await createClient({ timezone: "Europe/Berlin" });
    await ingest([status(id, unique("wamid"), "sent", Date.UTC(2026, 9, 25, 1, 30), { category: "utility" })]);
    // October in Berlin: 2026-10-01 00:00 CEST to 2026-11-01 00:00 CET, 31 days and 1 hour.
    const october = await categories(id, "2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00+01:00");
    expect([october.status, october.body.categories]).toEqual([200, [{ category: "utility", ...zero, sent: 1 }]]);
    // Troll (Antarctica) gives back 2 hours; past that a range is over the limit.
    expect((await categories(id, "2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00Z")).status).toBe(200);
    const over = await categories(id, "2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00.001Z");
    expect([over.status, over.body.error?.code]).toEqual([400, "range_too_large"]);
    const counters = await call(`/v1/clients/${id}/counters?from=${encodeURIComponent("2026-10-01T00:00:00+02:00")}&to=${encodeURIComponent("2026-11-01T00:00:00+01:00")}`, authed(await admin()));
    expect(counters.status).toBe(200);
  });
});
