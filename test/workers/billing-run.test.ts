import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished } from "vitest";
import { dayDueAt, type BillingResponse } from "../../schema/billing.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { admin, authed, call, createClient, d1RefusingBatchesOf, failingBucket, gatedBucket, gatedDb, signIn, unique, withEnv } from "./helpers.ts";
import { billingOf, downloadBytes, ingest, rateCard, runDay, status } from "./billing-fixtures.ts";
import { flush, parseCsv, report } from "./lake-fixtures.ts";
import { clearOfMinuteTurn } from "../minute-turn.ts";
import { ledgersOf, openClients, prefetchLedgers, runBillingDay } from "../../workers/billing/run.ts";
import { billingClients, runBillingOnDemand } from "../../workers/billing/schedule.ts";
import { dayState } from "../../workers/billing/store.ts";
import { ensureBillingFiles } from "../../workers/billing/files.ts";
import { markRebills } from "../../workers/billing/rebills.ts";

const at = (iso: string) => Date.parse(iso);
const m = () => unique("wamid");
/** A status as Meta sends a read: no pricing at all. */
const bare = { category: undefined, billable: undefined, pricing_type: undefined };
const line = (client_id: string, category: string, country: string, billable_count: number, unit_price_micros: number, currency = "BRL") => ({
  client_id,
  client_name: `Client ${client_id}`,
  category,
  country,
  billable_count,
  unit_price_micros,
  amount_micros: billable_count * unit_price_micros,
  currency,
});

describe("what is billed", () => {
  it("bills a message once on its first delivered/read, and never failed or free messages", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "BR", unit_price_micros: 62_500 });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const t = at("2026-11-03T12:00:00Z");
    const [a, b, c, d, e, f, g] = [m(), m(), m(), m(), m(), m(), m()];
    await ingest([
      status(id, a, "sent", t),
      status(id, a, "delivered", t + 1000),
      status(id, a, "read", t + 5000),
      status(id, b, "read", t, { category: "utility", country: "US" }),
      status(id, c, "sent", t),
      status(id, c, "failed", t + 1000),
      status(id, d, "delivered", t, { category: "service", billable: false, pricing_type: "free_customer_service" }),
      status(id, e, "delivered", t, { billable: false, pricing_type: "free_entry_point" }),
      status(id, f, "sent", t),
      // A failure without pricing takes its message's category, never a bill.
      status(id, g, "sent", t),
      status(id, g, "failed", t + 1000, bare),
    ]);
    const run = await runDay("2026-11-03");
    expect(run).toMatchObject({ date: "2026-11-03", revision: 1, changed: true, unpriced: [] });
    expect(run.files).toEqual(["billing/date=2026-11-03/billing.csv", "billing/date=2026-11-03/billing.parquet"]);

    const body = await billingOf("2026-11-03", id, await signIn("finance"));
    expect(body.lines).toEqual([line(id, "marketing", "BR", 1, 62_500), line(id, "utility", "US", 1, 8_000)]);
    expect(body.revision).toBe(1);
    expect(typeof body.computed_at).toBe("number");
    const stored = await env.DB.prepare("SELECT billable_count, amount_micros, revision FROM billing_daily WHERE client_id = ? ORDER BY category").bind(id).all();
    expect(stored.results).toEqual([
      { billable_count: 1, amount_micros: 62_500, revision: 1 },
      { billable_count: 1, amount_micros: 8_000, revision: 1 },
    ]);
  });

  it("takes a bridged record without `billable` as the webhook does: billable when its pricing type is regular", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const t = at("2026-11-04T12:00:00Z");
    const unsaid = { category: "utility", billable: undefined };
    await ingest([
      status(id, m(), "delivered", t, { ...unsaid, pricing_type: "regular" }),
      status(id, m(), "delivered", t, { ...unsaid, pricing_type: "free_entry_point" }),
      status(id, m(), "delivered", t, { ...unsaid, pricing_type: undefined }),
      // What a record says wins over its pricing type.
      status(id, m(), "delivered", t, { category: "utility", billable: false, pricing_type: "regular" }),
    ]);
    await runDay("2026-11-04");
    expect((await billingOf("2026-11-04", id)).lines).toEqual([line(id, "utility", "BR", 1, 8_000)]);
  });

  it("bills a message read as it arrived (Meta's read has no pricing, and no delivered comes) with its sent's pricing, and counts its reads in its category", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const t = at("2026-10-14T12:00:00Z");
    const [early, together, free, delivered] = [m(), m(), m(), m()];
    const utility = { category: "utility" };
    const service = { category: "service", billable: false, pricing_type: "free_customer_service" };
    await ingest([status(id, early, "sent", t, utility), status(id, free, "sent", t, service), status(id, delivered, "delivered", t, utility)]);
    await ingest([
      status(id, early, "read", t + 2_000, bare),
      // The read listed before its priced sent, in one request.
      status(id, together, "read", t + 3_000, bare),
      status(id, together, "sent", t, utility),
      status(id, free, "read", t + 4_000, bare),
      status(id, delivered, "read", t + 5_000, bare),
    ]);
    await runDay("2026-10-14");
    // early and together on their reads, delivered once (on its delivered); the free message never.
    expect((await billingOf("2026-10-14", id)).lines).toEqual([line(id, "utility", "BR", 3, 8_000)]);
    const res = await call(`/v1/clients/${id}/categories?from=2026-10-14&to=2026-10-15`, authed(await admin()));
    const byCategory = ((await res.json()) as { categories: { category: string | null; read: number }[] }).categories;
    expect(byCategory.map((c) => [c.category, c.read])).toEqual([["utility", 3], ["service", 0], [null, 1]]);
    // The lake row of a read that took its message's pricing says so.
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-10-14", to: "2026-10-15", status: "read" })).text());
    const col = (name: string) => header!.indexOf(name);
    const read = rows.find((r) => r[col("message_id")] === early)!;
    expect([read[col("category")], read[col("billable")]]).toEqual(["utility", "true"]);
    // And the lake recounts what the ledger billed.
    const reconcile = await call(`/v1/billing/2026-10-14/reconcile?client_id=${id}`, authed(await admin()));
    expect(await reconcile.json()).toMatchObject({ ok: true, billed_total: 3, lake_total: 3 });
  });

  it("bills a delivered/read that came without pricing before its message's priced status, once that comes, on its own day", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "marketing", country: "*", unit_price_micros: 5_000 });
    const t = at("2026-10-21T23:59:00Z");
    const [readFirst, bothFirst, free, repeated, pricedNextDay] = [m(), m(), m(), m(), m()];
    const marketing = { category: "marketing" };
    await ingest([
      // Delivered before midnight without pricing, priced only by a read after midnight: the 21st's.
      status(id, pricedNextDay, "delivered", t + 40_000, bare),
      // Read just after midnight: billed on the 22nd, though its sent was on the 21st.
      status(id, readFirst, "read", t + 90_000, bare),
      status(id, bothFirst, "delivered", t + 10_000, bare),
      status(id, bothFirst, "read", t + 20_000, bare),
      status(id, free, "read", t + 30_000, bare),
      status(id, repeated, "read", t + 30_000, bare),
    ]);
    // The priced sent statuses come in a later request, stamped before the reads; one of them twice.
    await ingest([
      status(id, readFirst, "sent", t, marketing),
      status(id, bothFirst, "sent", t, marketing),
      status(id, repeated, "sent", t, marketing),
      status(id, pricedNextDay, "read", t + 120_000, marketing),
    ]);
    await ingest([status(id, free, "sent", t, { category: "service", billable: false, pricing_type: "free_customer_service" }), status(id, repeated, "sent", t, marketing)]);
    await runDay("2026-10-21");
    await runDay("2026-10-22");
    // Each priced message once, on its first delivered/read: the day the read (or delivered) happened.
    expect((await billingOf("2026-10-21", id)).lines).toEqual([line(id, "marketing", "BR", 3, 5_000)]);
    expect((await billingOf("2026-10-22", id)).lines).toEqual([line(id, "marketing", "BR", 1, 5_000)]);
    for (const [day, n] of [["2026-10-21", 3], ["2026-10-22", 1]] as const) {
      const reconcile = await call(`/v1/billing/${day}/reconcile?client_id=${id}`, authed(await admin()));
      expect(await reconcile.json()).toMatchObject({ ok: true, billed_total: n, lake_total: n });
    }
  });

  it("bills a message whose unpriced read comes again with its first priced status, once (at least once delivery)", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const t = at("2026-10-08T12:00:00Z");
    const [withSent, withDelivered] = [m(), m()];
    await ingest([status(id, withSent, "read", t + 2_000, bare), status(id, withDelivered, "read", t + 2_000, bare)]);
    // The reads again (a retried webhook, a bridge resending an uncommitted batch), each with its
    // message's priced status: the copy of the stored read took the bill and, not being stored, billed nothing.
    await ingest([
      status(id, withSent, "read", t + 2_000, bare),
      status(id, withSent, "sent", t, { category: "utility" }),
      status(id, withDelivered, "read", t + 2_000, bare),
      status(id, withDelivered, "delivered", t + 5_000, { category: "utility" }),
    ]);
    await runDay("2026-10-08");
    expect((await billingOf("2026-10-08", id)).lines).toEqual([line(id, "utility", "BR", 2, 8_000)]);
    const reconcile = await call(`/v1/billing/2026-10-08/reconcile?client_id=${id}`, authed(await admin()));
    expect(await reconcile.json()).toMatchObject({ ok: true, billed_total: 2, lake_total: 2 });
  });

  it("keeps counts without a rate card at price 0 and lists them as unpriced", async () => {
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", at("2026-11-04T10:00:00Z"), { category: "authentication", country: "AR" })]);
    await ingest([status(id, unique("wamid"), "delivered", at("2026-11-04T10:00:00Z"), { category: null })]);
    const run = await runDay("2026-11-04");
    const unpriced = [
      { client_id: id, category: "authentication", country: "AR", billable_count: 1 },
      { client_id: id, category: "unknown", country: "BR", billable_count: 1 },
    ];
    expect(run.unpriced).toEqual(unpriced);
    const body = await billingOf("2026-11-04", id);
    expect(body.lines).toEqual([line(id, "authentication", "AR", 1, 0), line(id, "unknown", "BR", 1, 0)]);
    expect(body.unpriced).toEqual(unpriced);
    // A card added since: the line stays billed at 0, and listed, until the day is run again.
    await rateCard({ client_id: id, category: "authentication", country: "AR", unit_price_micros: 30_000 });
    expect((await billingOf("2026-11-04", id)).unpriced).toEqual(unpriced);
    await runDay("2026-11-04");
    expect((await billingOf("2026-11-04", id)).unpriced).toEqual([unpriced[1]]);
  });

  it("does not call a line priced by a card of 0 unpriced", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "service", country: "*", unit_price_micros: 0 });
    await ingest([status(id, unique("wamid"), "delivered", at("2026-09-05T10:00:00Z"), { category: "service" })]);
    expect((await runDay("2026-09-05")).unpriced).toEqual([]);
    expect((await billingOf("2026-09-05", id)).unpriced).toEqual([]);
  });
});

describe("day boundaries", () => {
  it("bills by the client's local day: America/Sao_Paulo vs UTC", async () => {
    const sp = await createClient({ timezone: "America/Sao_Paulo" });
    const utc = await createClient({ timezone: "UTC" });
    for (const c of [sp, utc]) await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 1_000 });
    // 01:30 UTC on the 6th is 22:30 on the 5th in São Paulo (UTC−3).
    const t = at("2026-11-06T01:30:00Z");
    await ingest([status(sp.id, unique("wamid"), "delivered", t), status(utc.id, unique("wamid"), "delivered", t)]);
    await runDay("2026-11-05");
    await runDay("2026-11-06");
    // Other tests' clients may have lines on these days.
    const ours = async (date: string) => (await billingOf(date)).lines.map((l) => l.client_id).filter((c) => c === sp.id || c === utc.id);
    expect(await ours("2026-11-05")).toEqual([sp.id]);
    expect(await ours("2026-11-06")).toEqual([utc.id]);
  });

  it("counts as open each client whose own zone's day is not due, or that is marked", () => {
    const clients = [
      { id: "sp-1", timezone: "America/Sao_Paulo" },
      { id: "utc-1", timezone: "UTC" },
      { id: "sp-2", timezone: "America/Sao_Paulo" },
      { id: "utc-2", timezone: "UTC" },
    ];
    const between = dayDueAt("2026-11-05", "UTC");
    expect(between).toBeLessThan(dayDueAt("2026-11-05", "America/Sao_Paulo"));
    expect(openClients("2026-11-05", clients, between, new Set())).toBe(2);
    expect(openClients("2026-11-05", clients, between, new Set(["utc-2"]))).toBe(3);
    expect(openClients("2026-11-05", clients, dayDueAt("2026-11-05", "America/Sao_Paulo"), new Set())).toBe(0);
  });
});

describe("revisions", () => {
  it("re-runs without new events change nothing, byte for byte; late events bump the revision", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "BR", unit_price_micros: 62_500 });
    const day = "2026-11-07";
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T15:00:00Z`))]);
    const first = await runDay(day);
    const before = await billingOf(day);
    const csv = await downloadBytes(day, "csv");
    const parquet = await downloadBytes(day, "parquet");

    // As a run that crashed between its D1 commit and its uploads leaves them: the next run puts them back.
    const missing = [`billing/date=${day}/billing.parquet`, `billing/date=${day}/revision=${first.revision}/billing.csv`];
    await env.LAKE.delete(missing);
    const again = await runDay(day);
    expect(again).toMatchObject({ revision: first.revision, changed: false });
    for (const key of missing) expect(await env.LAKE.head(key)).not.toBeNull();
    expect(await billingOf(day)).toEqual(before);
    expect(await downloadBytes(day, "csv")).toEqual(csv);
    expect(await downloadBytes(day, "parquet")).toEqual(parquet);

    // A late status of that day, received after the day was billed.
    await ingest([status(id, unique("wamid"), "read", at(`${day}T23:59:00Z`))]);
    const late = await runDay(day);
    expect(late).toMatchObject({ revision: first.revision + 1, changed: true });
    const after = await billingOf(day);
    expect(after.lines).toEqual([line(id, "marketing", "BR", 2, 62_500)]);
    expect(after.computed_at).toBeGreaterThanOrEqual(before.computed_at!);
    const text = new TextDecoder().decode(await downloadBytes(day, "csv"));
    expect(text).toBe(
      "date,revision,client_id,client_name,category,country,billable_count,unit_price_micros,amount_micros,currency\r\n" +
        `${day},${late.revision},${id},Client ${id},marketing,BR,2,62500,125000,BRL\r\n`,
    );
  });

  it("a price change is a change of the day's lines", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    await ingest([status(id, unique("wamid"), "delivered", at("2026-11-08T08:00:00Z"), { category: "utility" })]);
    expect((await runDay("2026-11-08")).revision).toBe(1);
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 9_000 });
    expect(await runDay("2026-11-08")).toMatchObject({ revision: 2, changed: true });
    expect((await billingOf("2026-11-08", id)).lines).toEqual([line(id, "utility", "BR", 1, 9_000)]);
    // The same micros in another currency is another amount.
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 9_000, currency: "USD" });
    expect(await runDay("2026-11-08")).toMatchObject({ revision: 3, changed: true });
    expect((await billingOf("2026-11-08", id)).lines).toEqual([line(id, "utility", "BR", 1, 9_000, "USD")]);
  });

  it("deletes a line whose only message moved to an earlier day, and keeps the other lines: the client's that day and the day before, another client's alike", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    const other = await createClient({ timezone: "UTC" });
    for (const category of ["marketing", "utility"]) await rateCard({ client_id: id, category, country: "*", unit_price_micros: 5_000 });
    await rateCard({ client_id: other.id, category: "marketing", country: "*", unit_price_micros: 5_000 });
    const moved = m();
    await ingest([
      status(id, moved, "read", at("2026-10-26T09:00:00Z")),
      status(id, m(), "delivered", at("2026-10-26T10:00:00Z"), { country: "MX" }),
      status(id, m(), "delivered", at("2026-10-26T11:00:00Z"), { category: "utility" }),
      status(other.id, m(), "delivered", at("2026-10-26T12:00:00Z")),
    ]);
    const first = await runDay("2026-10-26");
    expect((await billingOf("2026-10-26", id)).lines).toEqual([line(id, "marketing", "BR", 1, 5_000), line(id, "marketing", "MX", 1, 5_000), line(id, "utility", "BR", 1, 5_000)]);
    // Its delivered of the day before arrives late: the message is the 25th's, and billed only there.
    await ingest([status(id, moved, "delivered", at("2026-10-25T23:00:00Z"))]);
    // The 25th billed first: the 26th's line deleted next has the same client, category and country.
    await runDay("2026-10-25");
    expect(await runDay("2026-10-26")).toMatchObject({ revision: first.revision + 1, changed: true });
    expect((await billingOf("2026-10-26", id)).lines).toEqual([line(id, "marketing", "MX", 1, 5_000), line(id, "utility", "BR", 1, 5_000)]);
    expect((await billingOf("2026-10-25", id)).lines).toEqual([line(id, "marketing", "BR", 1, 5_000)]);
    expect((await billingOf("2026-10-26", other.id)).lines).toEqual([line(other.id, "marketing", "BR", 1, 5_000)]);
  });

  it("a run with ledgers read before another run committed does not publish them over that run's lines: 409", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "BR", unit_price_micros: 50_000 });
    const day = "2026-09-14";
    await ingest([status(id, m(), "delivered", at(`${day}T15:00:00Z`))]);
    await runDay(day);
    const client = (await billingClients(env.DB)).find((c) => c.id === id)!;
    // A tick reads its ledgers first; meanwhile a late event arrives and an admin runs the day.
    const tickLedgers = await prefetchLedgers(env, new Map([[client, [day]]]), []);
    await ingest([status(id, m(), "read", at(`${day}T16:00:00Z`))]);
    const admins = await runDay(day);
    await expect(runBillingDay(env, day, [client], "cron", Date.now(), tickLedgers)).rejects.toMatchObject({ status: 409, code: "billing_run_conflict" });
    expect(await billingOf(day, id)).toMatchObject({ revision: admins.revision, lines: [line(id, "marketing", "BR", 2, 50_000)] });
    // A conflict is no failure: no failed run is recorded and the client's day is not marked stale.
    const failed = await env.DB.prepare("SELECT count(*) AS n FROM billing_runs WHERE date = ? AND status = 'failed'").bind(day).first<{ n: number }>();
    const marked = await env.DB.prepare("SELECT count(*) AS n FROM billing_rebills WHERE date = ? AND client_id = ?").bind(day, id).first<{ n: number }>();
    expect({ failed: failed!.n, marked: marked!.n }).toEqual({ failed: 0, marked: 0 });
  });

  it("a slow run that changed nothing leaves the files of a revision committed meanwhile, and its own revision's archive, as they were", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "BR", unit_price_micros: 50_000 });
    const day = "2026-09-15";
    await ingest([status(id, m(), "delivered", at(`${day}T15:00:00Z`))]);
    const first = await runDay(day);
    const archive = async (revision: number) => (await env.LAKE.get(`billing/date=${day}/revision=${revision}/billing.csv`))!.text();
    const firstArchive = await archive(first.revision);
    const client = (await billingClients(env.DB)).find((c) => c.id === id)!;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = runBillingDay(env, day, [client], "manual", Date.now(), {
      marks: async () => [],
      revision: async (date) => (await dayState(env.DB, date)).revision,
      read: async (date, clients) => {
        const lines = await ledgersOf(env, date, clients);
        await gate;
        return lines;
      },
      committed: () => {},
    });
    await ingest([status(id, m(), "read", at(`${day}T16:00:00Z`))]);
    const second = await runDay(day);
    release();
    expect(await slow).toMatchObject({ revision: first.revision, changed: false });
    for (const format of ["csv", "parquet"]) {
      expect((await env.LAKE.head(`billing/date=${day}/billing.${format}`))!.customMetadata).toEqual({ revision: String(second.revision) });
    }
    expect(await archive(first.revision)).toBe(firstArchive);
    expect(await archive(second.revision)).toContain(`${id},Client ${id},marketing,BR,2,`);
  });

  it("a manual run a line out of range fails leaves every one of its clients' day marked stale, not only the culprit's", async () => {
    const day = "2026-09-26";
    const [a, b] = [await createClient(), await createClient()];
    await rateCard({ client_id: a.id, category: "marketing", country: "BR", unit_price_micros: 1_000_000_000_000 });
    const clients = (await billingClients(env.DB)).filter((c) => c.id === a.id || c.id === b.id);
    const ledgers = {
      marks: async () => [],
      revision: async () => 0,
      read: async (_date: string, cs: { id: string }[]) => cs.map((c) => [{ category: "marketing", country: "BR", count: c.id === a.id ? 9_010 : 1 }]),
      committed: () => {},
    };
    await expect(runBillingDay(env, day, clients, "manual", Date.now(), ledgers)).rejects.toMatchObject({ status: 422, code: "amount_out_of_range" });
    // Nothing was billed: both clients' day is stale (open) until a run succeeds.
    const marked = await env.DB.prepare("SELECT client_id FROM billing_rebills WHERE date = ? ORDER BY client_id").bind(day).all<{ client_id: string }>();
    expect(marked.results.map((r) => r.client_id)).toEqual([a.id, b.id].sort());
  });

  it("a current file a concurrent writer replaced between the look and the put is looked at again and replaced", async () => {
    const day = "2026-09-24";
    const current = `billing/date=${day}/billing.csv`;
    await ensureBillingFiles(env.LAKE, day, 1, async () => ({ revision: 1, lines: [] }));
    const { bucket: slowBucket, reached, release } = gatedBucket(current);
    const next = ensureBillingFiles(slowBucket, day, 2, async () => ({ revision: 2, lines: [] }));
    await reached;
    // Revision 1's run rewrites its current file meanwhile (a new etag): revision 2's conditional put loses once.
    await env.LAKE.put(current, "stale", { customMetadata: { revision: "1" } });
    release();
    await next;
    expect((await env.LAKE.head(current))!.customMetadata).toEqual({ revision: "2" });
  });

  it("refuses a period whose amounts add up past 2^53 micros (422), though each line is below it", async () => {
    const { id } = await createClient();
    const huge = 5_000_000_000_000_000;
    // The rows would put every other period over them out of range too: they go with the test.
    onTestFinished(async () => {
      await env.DB.prepare("DELETE FROM billing_daily WHERE client_id = ?").bind(id).run();
    });
    for (const date of ["2025-03-21", "2025-03-22"]) {
      await env.DB.prepare(
        "INSERT INTO billing_daily (date, client_id, category, country, billable_count, unit_price_micros, amount_micros, currency, revision, computed_at) VALUES (?, ?, 'marketing', 'BR', 1, ?, ?, 'USD', 1, 0)",
      ).bind(date, id, huge, huge).run();
    }
    const res = await call(`/v1/billing/summary?from=2025-03-21&to=2025-03-22&client_id=${id}`, authed(await signIn("finance")));
    expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([422, "amount_out_of_range"]);
  });

  it("a manual run at the very millisecond a client's day begins bills that client", async () => {
    const day = "2026-09-25";
    const { id } = await createClient({ timezone: "UTC" });
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T00:00:00Z`))]);
    await runBillingOnDemand(env, day, at(`${day}T00:00:00Z`));
    expect((await billingOf(day, id)).lines).toEqual([expect.objectContaining({ client_id: id, billable_count: 1 })]);
  });

  it("a commit D1 refuses while no other run moved the day is 503 billing_unavailable and recorded as failed, not a 409 conflict", async () => {
    const day = "2026-09-28";
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T10:00:00Z`))]);
    const DB = d1RefusingBatchesOf(/INSERT INTO billing_runs/);
    const res = await withEnv({ DB }, `/v1/billing/${day}/run`, authed(await admin(), { method: "POST" }));
    expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([503, "billing_unavailable"]);
    const runs = await env.DB.prepare("SELECT status FROM billing_runs WHERE date = ?").bind(day).all<{ status: string }>();
    expect(runs.results.map((r) => r.status)).toEqual(["failed"]);
    expect((await billingOf(day, id)).revision).toBe(0);
  });

  it("a slow run's current file does not replace the one a later revision wrote while its put was on its way", async () => {
    const day = "2026-09-27";
    const current = `billing/date=${day}/billing.csv`;
    // The first run's put of the current CSV is held until the next revision's run has written its files.
    const { bucket: slowBucket, reached, release } = gatedBucket(current);
    const slow = ensureBillingFiles(slowBucket, day, 1, async () => ({ revision: 1, lines: [] }));
    await reached;
    await ensureBillingFiles(env.LAKE, day, 2, async () => ({ revision: 2, lines: [] }));
    release();
    await slow;
    expect((await env.LAKE.head(current))!.customMetadata).toEqual({ revision: "2" });
    expect((await env.LAKE.head(`billing/date=${day}/revision=1/billing.csv`))!.customMetadata).toEqual({ revision: "1" });
  });

  it("keeps a revision whose files R2 refused downloadable once re-billed: finance saw it and may have invoiced it", async () => {
    const day = "2026-08-20";
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "*", unit_price_micros: 10_000 });
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T10:00:00Z`))]);
    const adminToken = await signIn("admin");
    const first = await withEnv({ LAKE: failingBucket }, `/v1/billing/${day}/run`, authed(adminToken, { method: "POST" }));
    expect(first.status).toBe(503);
    // The run's lines committed all the same: finance reads revision 1 (and the page's sheet names it).
    expect(await billingOf(day, id)).toMatchObject({ revision: 1, lines: [expect.objectContaining({ billable_count: 1 })] });
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T11:00:00Z`))]);
    expect((await runDay(day)).revision).toBe(2);
    const res = await call(`/v1/billing/${day}/download?format=csv&revision=1`, authed(await signIn("finance")));
    expect([res.status, await res.text()]).toEqual([200, expect.any(String)]);
  });

  it("the first computation of an empty day is revision 1 with empty files", async () => {
    const run = await runDay("2026-10-01");
    expect(run).toMatchObject({ revision: 1, lines: 0 });
    expect(new TextDecoder().decode(await downloadBytes("2026-10-01", "csv"))).toBe(
      "date,revision,client_id,client_name,category,country,billable_count,unit_price_micros,amount_micros,currency\r\n",
    );
  });
});

describe("reading a day while a run commits its next revision", () => {
  /** `path` of a client, read while its statement matching `held` waits for a late event's run to commit revision 2 over 1. */
  async function readAcrossRebill(day: string, held: RegExp, path: (id: string) => string): Promise<unknown> {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "*", unit_price_micros: 10_000 });
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T10:00:00Z`))]);
    expect((await runDay(day)).revision).toBe(1);
    const finance = await signIn("finance");
    const { DB, reached, release } = gatedDb(held);
    const pending = withEnv({ DB }, path(id), authed(finance));
    await reached;
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T11:00:00Z`))]);
    expect((await runDay(day)).revision).toBe(2);
    release();
    return (await pending).json();
  }

  // Revision 1 billed one message, revision 2 two: the answer must be one revision's.
  it("GET /v1/billing names the revision whose lines it returns", async () => {
    const body = (await readAcrossRebill("2026-08-10", /FROM billing_daily b LEFT JOIN clients c/, (id) => `/v1/billing?date=2026-08-10&client_id=${id}`)) as BillingResponse;
    expect([body.revision, body.lines[0]!.billable_count]).toEqual([2, 2]);
  });

  it("a period's summary: its days' revisions and its totals are of the same lines", async () => {
    const body = (await readAcrossRebill("2026-08-12", /SUM\(b.billable_count\)/, (id) => `/v1/billing/summary?from=2026-08-12&to=2026-08-12&client_id=${id}`)) as {
      days: { revision: number }[];
      totals: { billable_count: number }[];
    };
    expect([body.days[0]!.revision, body.totals[0]!.billable_count]).toEqual([2, 2]);
  });
});

describe("a period's summary", () => {
  it("adds a period's days up per client and currency, and says how final each day is", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "marketing", country: "*", unit_price_micros: 10_000 });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 2_000, currency: "USD" });
    const delivered = (day: string, category: string) => status(id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`), { category });
    await ingest([delivered("2026-09-01", "marketing"), delivered("2026-09-01", "marketing"), delivered("2026-09-02", "marketing"), delivered("2026-09-02", "utility")]);
    const first = await runDay("2026-09-01");
    const second = await runDay("2026-09-02");

    const res = await call(`/v1/billing/summary?from=2026-09-01&to=2026-09-03&client_id=${id}`, authed(await signIn("finance")));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { clients: unknown[]; totals: unknown[]; days: { date: string; revision: number; checked_at: number | null; open_clients: number }[] };
    expect(body.clients).toEqual([
      { client_id: id, client_name: expect.any(String), currency: "BRL", billable_count: 3, amount_micros: 30_000 },
      { client_id: id, client_name: expect.any(String), currency: "USD", billable_count: 1, amount_micros: 2_000 },
    ]);
    expect(body.totals).toEqual([
      { currency: "BRL", billable_count: 3, amount_micros: 30_000 },
      { currency: "USD", billable_count: 1, amount_micros: 2_000 },
    ]);
    expect(body.days.map((d) => [d.date, d.revision, d.checked_at !== null, d.open_clients])).toEqual([
      ["2026-09-01", first.revision, true, 0],
      ["2026-09-02", second.revision, true, 0],
      ["2026-09-03", 0, false, 0],
    ]);
  });

  it("counts a client marked for re-billing as open on the marked day only, not on the period's other days", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    // Days of its own: the summary test above counts on 2026-09-03 never having been run.
    for (const day of ["2026-07-01", "2026-07-02", "2026-07-03"]) await runDay(day);
    await markRebills(env.DB, ["2026-07-02"], [id], Date.now());
    const res = await call(`/v1/billing/summary?from=2026-07-01&to=2026-07-03&client_id=${id}`, authed(await signIn("finance")));
    const body = (await res.json()) as { days: { date: string; open_clients: number }[] };
    expect(body.days.map((d) => [d.date, d.open_clients])).toEqual([
      ["2026-07-01", 0],
      ["2026-07-02", 1],
      ["2026-07-03", 0],
    ]);
  });

  it("refuses a period ending before it starts, one over 92 days, an unknown client, and viewers", async () => {
    const finance = await signIn("finance");
    expect((await call("/v1/billing/summary?from=2026-09-01&to=2026-12-01", authed(finance))).status).toBe(200);
    for (const q of ["from=2026-09-02&to=2026-09-01", "from=2026-09-01&to=2026-12-02", "from=2026-01-01&to=2026-06-30", "from=2026-09"]) {
      expect([q, (await call(`/v1/billing/summary?${q}`, authed(finance))).status]).toEqual([q, 400]);
    }
    expect((await call("/v1/billing/summary?from=2026-09-01&to=2026-09-30&client_id=ghost", authed(finance))).status).toBe(404);
    expect((await call("/v1/billing/summary?from=2026-09-01&to=2026-09-30", authed(await signIn("viewer")))).status).toBe(403);
  });

  it("answers a period over 92 days 400 range_too_large with details.max_days, as reports and counters do", async () => {
    const finance = authed(await signIn("finance"));
    // 2026-01-01 to 2026-04-02 is 92 days, both ends included; a day more is one too many.
    expect((await call("/v1/billing/summary?from=2026-01-01&to=2026-04-02", finance)).status).toBe(200);
    const res = await call("/v1/billing/summary?from=2026-01-01&to=2026-04-03", finance);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: "range_too_large", message: "a summary covers at most 92 days", details: { max_days: 92 } } });
  });
});

describe("reconciliation", () => {
  it("recounts the client's local day, not the UTC one", async () => {
    // São Paulo's 14th of October ends at 03:00Z on the 15th: both reads are its 14th's, none the UTC 14th's.
    const { id } = await createClient({ timezone: "America/Sao_Paulo" });
    await ingest([status(id, unique("wamid"), "read", at("2026-10-15T01:00:00Z"), { category: "utility" }), status(id, unique("wamid"), "delivered", at("2026-10-15T02:30:00Z"), { category: "utility" })]);
    await runDay("2026-10-14");
    const reconcile = await call(`/v1/billing/2026-10-14/reconcile?client_id=${id}`, authed(await admin()));
    expect(await reconcile.json()).toMatchObject({ ok: true, billed_total: 2, lake_total: 2 });
  });

  it("answers a one-client recount whose client's rows cannot be written to the lake first 503 flush_failed (a retry can succeed)", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    await runInDurableObject(counterOf(env, id), (instance) => {
      const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
      lake.bucket = failingBucket;
    });
    await ingest([status(id, unique("wamid"), "delivered", at("2026-10-11T13:00:00Z"))]);
    const res = await call(`/v1/billing/2026-10-11/reconcile?client_id=${id}`, authed(await admin()));
    expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([503, "flush_failed"]);
  });

  it("reports where billed counts and the Durable Object ledgers differ", async () => {
    const { id } = await createClient();
    const day = "2026-11-09";
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T10:00:00Z`))]);
    await runDay(day);
    const reconcile = async () => (await call(`/v1/billing/${day}/reconcile`, authed(await admin()))).json();
    expect(await reconcile()).toMatchObject({ date: day, revision: 1, ok: true, billed_total: 1, ledger_total: 1, differences: [] });
    await ingest([status(id, unique("wamid"), "delivered", at(`${day}T11:00:00Z`), { country: "PT" })]);
    expect(await reconcile()).toMatchObject({
      ok: false,
      differences: [{ client_id: id, category: "marketing", country: "PT", billed: 0, ledger: 1 }],
    });
    await runDay(day);
    expect(await reconcile()).toMatchObject({ ok: true, revision: 2, lake_total: null });
  });

  it("for one client, also recounts the billable messages found in the lake", async () => {
    const { id } = await createClient();
    const day = "2026-11-10";
    const [once, before, free] = [unique("wamid"), unique("wamid"), unique("wamid")];
    await ingest([
      // The UTC day includes its first millisecond and ends before the next day's.
      status(id, unique("wamid"), "delivered", at(`${day}T00:00:00Z`)),
      status(id, unique("wamid"), "delivered", at("2026-11-11T00:00:00Z")),
      status(id, once, "delivered", at(`${day}T10:00:00Z`)),
      status(id, once, "read", at(`${day}T10:05:00Z`)),
      status(id, before, "delivered", at("2026-11-09T23:00:00Z")),
      status(id, before, "read", at(`${day}T01:00:00Z`)),
      status(id, free, "delivered", at(`${day}T12:00:00Z`), { billable: false, pricing_type: "free_customer_service" }),
    ]);
    await runDay(day);
    const res = await call(`/v1/billing/${day}/reconcile?client_id=${id}`, authed(await admin()));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      date: day,
      revision: 1,
      clients: 1,
      billed_total: 2,
      ledger_total: 2,
      lake_total: 2,
      ok: true,
      differences: [],
    });
    expect((await env.LAKE.list({ prefix: `lake/notifications/client_id=${id}/` })).objects.length).toBeGreaterThan(0);

    // Delivered further before the day than the lake is read around it: the ledger bills the earlier
    // day, the lake recount counts its read of this day. Reported as a difference, never hidden.
    const other = await createClient();
    const early = unique("wamid");
    await ingest([status(other.id, early, "delivered", at("2026-11-06T10:00:00Z")), status(other.id, early, "read", at(`${day}T10:00:00Z`))]);
    expect(await (await call(`/v1/billing/${day}/reconcile?client_id=${other.id}`, authed(await admin()))).json()).toMatchObject({
      ok: false,
      differences: [{ client_id: other.id, category: "marketing", country: "BR", billed: 0, ledger: 0, lake: 1 }],
    });
    expect((await call(`/v1/billing/${day}/reconcile?client_id=nobody`, authed(await admin()))).status).toBe(404);
  });
});

describe("access", () => {
  it("an admin run bills a day still running as it stands, and says how many clients are still in it", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "marketing", country: "*", unit_price_micros: 5_000 });
    // The day must not turn between the event and the run (it turns only at a minute turn).
    await clearOfMinuteTurn();
    const now = Date.now();
    const today = new Date(now).toISOString().slice(0, 10);
    await ingest([status(id, unique("wamid"), "delivered", now)]);
    const run = await runDay(today);
    expect(run.open_clients).toBeGreaterThanOrEqual(1);
    expect(run.open_clients).toBeLessThanOrEqual(run.clients);
    // The stored lines say so too: this client's are its day so far; a closed day's are not.
    expect(await billingOf(today, id)).toMatchObject({ open_clients: 1, lines: [line(id, "marketing", "BR", 1, 5_000)] });
    // A closed day no other test runs: the first test counts 2026-11-03's revisions from 1.
    await runDay("2026-11-02");
    expect((await billingOf("2026-11-02", id)).open_clients).toBe(0);
  });

  it("says when a day is due: from its first client's local end plus the grace to its last's", async () => {
    const tokyo = await createClient({ timezone: "Asia/Tokyo" });
    const finance = await signIn("finance");
    const due = async (query: string) => ((await (await call(`/v1/billing?${query}`, authed(finance))).json()) as BillingResponse).due;
    // 2026-11-20 ends at 15:00 UTC in Tokyo.
    expect(await due(`date=2026-11-20&client_id=${tokyo.id}`)).toEqual({ from: Date.UTC(2026, 10, 20, 17), to: Date.UTC(2026, 10, 20, 17) });
    // São Paulo's ends at 03:00 UTC on the 21st: the day is due from Tokyo's (or an earlier zone's) to its (or a later one's).
    await createClient({ timezone: "America/Sao_Paulo" });
    const all = ((await (await call("/v1/admin/clients", authed(await admin()))).json()) as { clients: { timezone: string }[] }).clients;
    const dues = all.map((c) => dayDueAt("2026-11-20", c.timezone));
    expect(Math.min(...dues)).toBeLessThanOrEqual(Date.UTC(2026, 10, 20, 17));
    expect(Math.max(...dues)).toBeGreaterThanOrEqual(Date.UTC(2026, 10, 21, 5));
    expect(await due("date=2026-11-20")).toEqual({ from: Math.min(...dues), to: Math.max(...dues) });
  });

  it("finance reads but cannot run; viewers see nothing; bad dates and days not begun are refused", async () => {
    const finance = await signIn("finance");
    const viewer = await signIn("viewer");
    expect((await call("/v1/billing?date=2026-11-03", authed(viewer))).status).toBe(403);
    const nobody = await call("/v1/billing?date=2026-11-03&client_id=nobody", authed(finance));
    expect([nobody.status, ((await nobody.json()) as { error: { code: string } }).error.code]).toEqual([404, "client_not_found"]);
    expect((await call("/v1/billing?date=2026-11-03")).status).toBe(401);
    expect((await call("/v1/billing/2026-11-03/run", authed(finance, { method: "POST" }))).status).toBe(403);
    expect((await call("/v1/billing/2026-11-03/reconcile", authed(finance))).status).toBe(403);
    expect((await call("/v1/billing?date=2026-13-01", authed(finance))).status).toBe(400);
    expect((await call("/v1/billing/yesterday/run", authed(await admin(), { method: "POST" }))).status).toBe(400);
    // Days no event can have: a clear 400, not a date arithmetic error.
    // The first local day an event can have, west of UTC, is a day billing can read.
    expect((await call("/v1/billing?date=1999-12-31", authed(finance))).status).toBe(200);
    // And the last, east of it (2100-01-01 began before events stop, at its midnight UTC).
    expect((await call("/v1/billing?date=2100-01-01", authed(finance))).status).toBe(200);
    for (const day of ["9999-12-31", "0001-01-01", "1999-12-30", "2100-01-02"]) expect((await call(`/v1/billing/${day}/run`, authed(await admin(), { method: "POST" }))).status).toBe(400);
    const open = await call("/v1/billing/2099-01-01/run", authed(await admin(), { method: "POST" }));
    expect(open.status).toBe(409);
    expect(((await open.json()) as { error: { code: string } }).error.code).toBe("day_not_started");
    const never = await billingOf("2026-01-01", undefined, finance);
    expect(never).toEqual({ date: "2026-01-01", revision: 0, computed_at: null, open_clients: 0, due: expect.objectContaining({ from: expect.any(Number) }), lines: [], unpriced: [] });
    const notComputed = await call("/v1/billing/2026-01-01/download?format=csv", authed(finance));
    expect([notComputed.status, ((await notComputed.json()) as { error: { code: string } }).error.code]).toEqual([404, "billing_not_computed"]);
  });
});
