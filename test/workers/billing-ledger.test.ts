import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { localDate } from "../../schema/time.ts";
import { clientLedgerLinesByDay } from "../../workers/client-counters.ts";
import { admin, createClient, postJson, postWebhook, unique } from "./helpers.ts";
import { billingOf, ingest, rateCard, runDay, status } from "./billing-fixtures.ts";

// The billable-message ledger (durable-objects/billable-ledger.ts): every billable message billed once,
// on the day and with the pricing docs/billing.md gives, whatever order and path its statuses take.

const at = (iso: string) => Date.parse(iso);
/** A bridged record that states no pricing (optional on the topic: docs/kafka.md). */
const bare = { category: undefined, billable: undefined, pricing_type: undefined };

const sec = (ms: number) => Math.floor(ms / 1000);
/** A client's billed lines of a day as [category, messages]. */
const counts = async (date: string, id: string) => (await billingOf(date, id)).lines.map((l) => [l.category, l.billable_count]);

describe("a mirrored status stored first without pricing, then its priced webhook copy", () => {
  it("bills the message once (Meta charges it), though every priced status is a duplicate of an unpriced copy", async () => {
    const { id, phones } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const t = at("2026-11-12T12:00:00Z");
    const wamid = `wamid.${unique("m")}`;
    // The Kafka mirror (event_id `<wamid>:<status>`, as docs/kafka.md asks) carries no pricing and lands first.
    await ingest([status(id, wamid, "sent", t, bare), status(id, wamid, "delivered", t + 1_000, bare)]);
    // Meta's own webhooks of the same statuses, with pricing: duplicates of the stored copies.
    for (const [s, ms] of [["sent", t], ["delivered", t + 1_000]] as const) {
      const res = await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: wamid, status: s, timestamp: sec(ms), category: "utility" })] }]));
      expect(res.status).toBe(200);
    }
    // The read (Meta sends it without pricing).
    const res = await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: wamid, status: "read", timestamp: sec(t + 5_000) })] }]));
    expect(res.status).toBe(200);
    await runDay("2026-11-12");
    expect(await counts("2026-11-12", id)).toEqual([["utility", 1]]);
  });

  it.each<[string, string, (id: string, wamid: string, t: number) => Promise<void>]>([
    ["when the producer resends the delivered with pricing (a duplicate), then the read comes", "2026-11-13", async (id, wamid, t) => {
      await ingest([status(id, wamid, "delivered", t + 1_000, bare)]);
      await ingest([status(id, wamid, "delivered", t + 1_000, { category: "utility" })]);
      await ingest([status(id, wamid, "read", t + 5_000, bare)]);
    }],
    ["when the priced duplicate comes in one request with another message's new status", "2026-11-14", async (id, wamid, t) => {
      await ingest([status(id, wamid, "delivered", t + 1_000, bare)]);
      await ingest([status(id, wamid, "delivered", t + 1_000, { category: "utility" }), status(id, `wamid.${unique("m")}`, "sent", t, { category: "utility" })]);
    }],
    ["when the priced copy's time is a little earlier than the stored copy's (webhook seconds, mirror milliseconds), with the read in the same request", "2026-11-15", async (id, wamid, t) => {
      await ingest([status(id, wamid, "delivered", t + 1_500, bare)]);
      await ingest([status(id, wamid, "delivered", t + 1_000, { category: "utility" }), status(id, wamid, "read", t + 5_000, bare)]);
    }],
  ])("bills it %s", async (_when, day, send) => {
    const { id } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    await send(id, `wamid.${unique("m")}`, at(`${day}T12:00:00Z`));
    await runDay(day);
    expect(await counts(day, id)).toEqual([["utility", 1]]);
  });
});

const worker = exports.default as unknown as { scheduled(opts: { cron: string; scheduledTime: number }): Promise<unknown> };
const marks = (id: string) => env.DB.prepare("SELECT date FROM billing_rebills WHERE client_id = ? ORDER BY date").bind(id).all<{ date: string }>().then((r) => r.results.map((m) => m.date));

describe("a status arriving days late that moves a bill to the day before", () => {
  it("marks both days and the next tick bills the message once, on the earlier day", async () => {
    const { id } = await createClient({ timezone: "America/Sao_Paulo" });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const m = unique("wamid");
    // Read priced (a bridged record) 00:00:30 local on the 11th; delivered 23:59:50 local on the 10th, late.
    await ingest([status(id, m, "sent", at("2026-11-11T02:59:00Z"), { category: "utility" }), status(id, m, "read", at("2026-11-11T03:00:30Z"), bare)]);
    await runDay("2026-11-10");
    await runDay("2026-11-11");
    expect(await counts("2026-11-11", id)).toEqual([["utility", 1]]);
    await ingest([status(id, m, "delivered", at("2026-11-11T02:59:50Z"), { category: "utility" })]);
    await vi.waitFor(async () => expect(await marks(id)).toEqual(["2026-11-10", "2026-11-11"]));
    await worker.scheduled({ cron: "*/10 * * * *", scheduledTime: Date.now() });
    expect(await counts("2026-11-10", id)).toEqual([["utility", 1]]);
    expect(await counts("2026-11-11", id)).toEqual([]);
    expect(await marks(id)).toEqual([]);
  });

  it("after the client's zone changed: the bill moves from the old zone's day to the new zone's, both re-billed", async () => {
    const { id } = await createClient({ timezone: "Asia/Tokyo" });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const m = unique("wamid");
    // Read at 2026-11-11T16:00Z: the 12th in Tokyo.
    await ingest([status(id, m, "sent", at("2026-11-11T15:00:00Z"), { category: "utility" }), status(id, m, "read", at("2026-11-11T16:00:00Z"), bare)]);
    for (const d of ["2026-11-11", "2026-11-12"]) await runDay(d);
    expect(await counts("2026-11-12", id)).toEqual([["utility", 1]]);
    expect((await postJson(`/v1/admin/clients/${id}`, { timezone: "America/Sao_Paulo" }, await admin(), "PATCH")).status).toBe(200);
    // Delivered 15:30Z on the 11th, late: the 11th in São Paulo.
    await ingest([status(id, m, "delivered", at("2026-11-11T15:30:00Z"), { category: "utility" })]);
    await vi.waitFor(async () => expect(await marks(id)).toEqual(["2026-11-11", "2026-11-12"]));
    await worker.scheduled({ cron: "*/10 * * * *", scheduledTime: Date.now() });
    expect(await counts("2026-11-11", id)).toEqual([["utility", 1]]);
    expect(await counts("2026-11-12", id)).toEqual([]);
  });

  it("a delivered stored without pricing, priced days later by its sent: billed on the delivered's day, marked and re-billed", async () => {
    const { id } = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: id, category: "utility", country: "*", unit_price_micros: 8_000 });
    const m = unique("wamid");
    await ingest([status(id, m, "delivered", at("2026-11-14T23:59:59Z"), bare)]);
    await runDay("2026-11-14");
    await runDay("2026-11-15");
    await ingest([status(id, m, "sent", at("2026-11-14T23:59:58Z"), { category: "utility" }), status(id, m, "read", at("2026-11-15T00:00:10Z"), bare)]);
    await vi.waitFor(async () => expect(await marks(id)).toEqual(["2026-11-14"]));
    await worker.scheduled({ cron: "*/10 * * * *", scheduledTime: Date.now() });
    expect(await counts("2026-11-14", id)).toEqual([["utility", 1]]);
    expect(await counts("2026-11-15", id)).toEqual([]);
  });
});

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

async function scenario(seed: number, opts: { shards?: number; reshardMidway?: boolean; tz: string }) {
  const r = rng(seed);
  const { id } = await createClient({ timezone: opts.tz, shards: opts.shards });
  const base = Date.parse("2026-11-20T03:00:00Z"); // São Paulo midnight
  const events: unknown[] = [];
  const expected = new Map<string, number>();
  const cats = ["marketing", "utility"];
  for (let i = 0; i < 40; i++) {
    const m = unique("wamid");
    const t0 = base + Math.floor((r() - 0.5) * 240_000);
    const sentCat = cats[Math.floor(r() * 2)]!;
    const delCat = r() < 0.2 ? cats[Math.floor(r() * 2)]! : sentCat;
    const kind = r();
    const d1 = 1_000 + Math.floor(r() * 60_000);
    const d2 = d1 + Math.floor(r() * 60_000);
    const mine: unknown[] = [];
    if (kind < 0.1) {
      mine.push(status(id, m, "sent", t0, { category: sentCat }), status(id, m, "failed", t0 + d1, bare));
    } else if (kind < 0.2) {
      const free = { category: "service", billable: false, pricing_type: "free_customer_service" };
      mine.push(status(id, m, "sent", t0, free), status(id, m, "delivered", t0 + d1, free), status(id, m, "read", t0 + d2, bare));
    } else {
      const hasDelivered = r() < 0.7;
      const hasRead = r() < 0.8 || !hasDelivered;
      mine.push(status(id, m, "sent", t0, { category: sentCat }));
      if (hasDelivered) mine.push(status(id, m, "delivered", t0 + d1, { category: delCat }));
      if (hasRead) mine.push(status(id, m, "read", t0 + d2, bare));
      const [day, cat] = hasDelivered ? [localDate(t0 + d1, opts.tz), delCat] : [localDate(t0 + d2, opts.tz), sentCat];
      expected.set(`${day}|${cat}`, (expected.get(`${day}|${cat}`) ?? 0) + 1);
    }
    for (const e of [...mine]) if (r() < 0.3) mine.push(e);
    events.push(...mine);
  }
  for (let i = events.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [events[i], events[j]] = [events[j]!, events[i]!];
  }
  const chunks: unknown[][] = [];
  for (let i = 0; i < events.length; ) {
    const n = 1 + Math.floor(r() * 6);
    chunks.push(events.slice(i, i + n));
    i += n;
  }
  for (let i = 0; i < chunks.length; ) {
    if (opts.reshardMidway && i >= chunks.length / 2 && i < chunks.length / 2 + 3) {
      const res = await postJson(`/v1/admin/clients/${id}`, { shards: 3 }, await admin(), "PATCH");
      expect(res.status).toBe(200);
      opts.reshardMidway = false;
    }
    const n = 1 + Math.floor(r() * 3);
    await Promise.all(chunks.slice(i, i + n).map((c) => ingest(c)));
    i += n;
  }
  const shards = opts.shards ?? 1;
  const days = ["2026-11-19", "2026-11-20"];
  const now = (await env.DB.prepare("SELECT shards FROM clients WHERE id = ?").bind(id).first<{ shards: number }>())!.shards;
  const lines = await clientLedgerLinesByDay(env, { id, shards: Math.max(shards, now) }, days);
  const got = new Map<string, number>();
  for (const d of days) for (const l of lines[d]!) got.set(`${d}|${l.category}`, l.count);
  expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...expected].sort()));
}

describe("any arrival order, grouping, duplicates, shards", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}, one shard`, () => scenario(seed, { tz: "America/Sao_Paulo" }));
    it(`seed ${seed}, three shards`, () => scenario(seed * 7, { tz: "America/Sao_Paulo", shards: 3 }));
    it(`seed ${seed}, reshard midway`, () => scenario(seed * 13, { tz: "America/Sao_Paulo", reshardMidway: true }));
  }
});
