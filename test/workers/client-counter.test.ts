import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import type { CounterReads } from "../../durable-objects/counter-reads.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import { eventIdOf, eventTableDdl, eventTableFor, storedEventRef } from "../../durable-objects/client-counter-tables.ts";
import { EVENT_COLUMNS, type NotificationEvent, type Status } from "../../schema/event.ts";
import { localDate, localDayRange, minuteOf } from "../../schema/time.ts";
import { partitionPrefix } from "../../workers/lake/layout.ts";
import { clearOfMinuteTurn } from "../minute-turn.ts";
import { unique, withClock } from "./helpers.ts";
import { readParquet } from "./lake-fixtures.ts";

const SP = { timezone: "America/Sao_Paulo" };

/** An event table as objects created them before 2026-11-30: the event id whole, in `event_id`. */
const legacyEventTableDdl = (table: string) =>
  `CREATE TABLE ${table} (message_id TEXT NOT NULL, event_id TEXT NOT NULL, billed_day TEXT, category TEXT, country TEXT, billed_at INTEGER, PRIMARY KEY (message_id, event_id)) WITHOUT ROWID`;
let n = 0;

function ev(over: Partial<NotificationEvent> = {}): NotificationEvent {
  n += 1;
  const message_id = over.message_id ?? `wamid.${n}`;
  const status = over.status ?? "delivered";
  return {
    event_id: `${message_id}:${status}`,
    message_id,
    client_id: "c",
    status,
    occurred_at: Date.UTC(2026, 10, 20, 12, 0, 0),
    received_at: Date.now(),
    category: "marketing",
    billable: true,
    pricing_type: "regular",
    recipient: "5511987654321",
    country: "BR",
    phone_number_id: "pn",
    template: null,
    error_code: null,
    error_title: null,
    source: "whatsapp",
    ...over,
  };
}

function counter(): { id: string; stub: DurableObjectStub<ClientCounter> } {
  const id = unique("cc");
  return { id, stub: env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(id)) };
}

/** The object's ledger lines of one local day. */
async function ledgerOf(stub: DurableObjectStub<ClientCounter>, day: string) {
  return (await stub.ledgerLinesByDay([day]))[day];
}

describe("ClientCounter durability", () => {
  it.each([
    ["while the outbox holds them", false],
    ["once an admin flush took the outbox to the lake", true],
  ])("keeps counts, dedup and the ledger after eviction, %s", async (_when, flushed) => {
    const { id, stub } = counter();
    const e = ev();
    await stub.ingest({ id, ...SP }, encodeBatch([e, ev({ status: "sent" })]));
    // Unlike the alarm, an admin flush does not upsert the counters before it drops the outbox rows.
    if (flushed) expect(await stub.flush()).toHaveLength(1);
    await evictDurableObject(stub);
    const again = await stub.ingest({ id, ...SP }, encodeBatch([e]));
    expect(again).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toEqual({ accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 });
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("keeps the time zone of the client's latest call, which the flush alarm's rollups count the day in", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, ...SP }, encodeBatch([ev()]));
    await stub.ingest({ id, timezone: "Asia/Tokyo" }, encodeBatch([ev()]));
    // The alarm after an eviction knows the client only from what the object stored.
    await evictDurableObject(stub);
    const zone = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'timezone'").one().value);
    expect(zone).toBe("Asia/Tokyo");
  });

  it("deduplicates against earlier months' event tables of either id form, and drops them after retention", async () => {
    const { id, stub } = counter();
    const now = Date.now();
    const monthsBack = (n: number) => eventTableFor(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() - n, 15));
    const [lastMonth, twoBack, expired] = [monthsBack(1), monthsBack(2), monthsBack(3)];
    await runInDurableObject(stub, (_instance, state) => {
      for (const t of [lastMonth, expired]) {
        state.storage.sql.exec(eventTableDdl(t));
        state.storage.sql.exec(`INSERT INTO ${t} (message_id, event_ref) VALUES ('seen-before', ?)`, storedEventRef("seen-before", "seen-before:delivered"));
      }
      state.storage.sql.exec(legacyEventTableDdl(twoBack));
      state.storage.sql.exec(`INSERT INTO ${twoBack} (message_id, event_id) VALUES ('legacy', 'legacy:read'), ('kafka-m', 'kafka-e1')`);
    });
    await evictDurableObject(stub);
    const res = await stub.ingest({ id, ...SP }, encodeBatch([
      ev({ event_id: "seen-before:delivered", message_id: "seen-before" }),
      ev({ event_id: "legacy:read", message_id: "legacy", status: "read" }),
      ev({ event_id: "kafka-e1", message_id: "kafka-m" }),
      ev({ event_id: "legacy:delivered", message_id: "legacy" }),
      ev(),
    ]));
    expect(res).toMatchObject({ accepted: 2, duplicates: 3 });
    const tables = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name GLOB 'events_[0-9]*' ORDER BY name").toArray().map((r) => r.name),
    );
    expect(tables).toEqual([twoBack, lastMonth, eventTableFor(now)]);
  });

  it("stores a WhatsApp event id without the message id it starts with, and other ids whole", async () => {
    const { id, stub } = counter();
    const wamid = "wamid.HBgLNTUxMTk5OTk5OTk5FQIAERgSQjVGRkE2QjI0QzFFRjc3QjZCAA==";
    const ids: [string, string][] = [[wamid, `${wamid}:delivered`], ["a:b", "a:b:read"], ["m", "m"], ["m", "mx:read"], ["m", ":read"], ["m", "m:"]];
    await stub.ingest({ id, ...SP }, encodeBatch(ids.map(([message_id, event_id]) => ev({ message_id, event_id }))));
    const stored = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec<{ message_id: string; event_ref: string }>(`SELECT message_id, event_ref FROM ${eventTableFor(Date.now())}`).toArray(),
    );
    expect(stored.find((r) => r.message_id === wamid)!.event_ref).toBe("\u007fdelivered");
    expect(new Set(stored.map((r) => `${r.message_id} ${eventIdOf(r.message_id, r.event_ref)}`))).toEqual(new Set(ids.map(([m, e]) => `${m} ${e}`)));
    const again = await stub.ingest({ id, ...SP }, encodeBatch(ids.map(([message_id, event_id]) => ev({ message_id, event_id }))));
    expect(again).toMatchObject({ accepted: 0, duplicates: ids.length });
  });

  it("reports SQLite rows written, about one per event for a large batch", async () => {
    const { id, stub } = counter();
    const events = Array.from({ length: 1000 }, (_, i) => ev({ status: i % 2 ? "sent" : "read", billable: false }));
    const res = await stub.ingest({ id, ...SP }, encodeBatch(events));
    expect(res.accepted).toBe(1000);
    // 1000 event rows and one outbox row; the counters are flushed later (and reported then). A first
    // call also stores the client id and time zone and creates the month's event table and an outbox
    // table (2 rows each).
    expect(res.rowsWritten).toBeGreaterThanOrEqual(1001);
    expect(res.rowsWritten).toBeLessThanOrEqual(1007);
  });

  it("writes one row per event plus one per call; counter and lake flushes are reported with the next call", async () => {
    const { id, stub } = counter();
    const calls = 20;
    for (let call = 0; call < calls; call++) {
      const batch = [0, 1, 2].map((k) => ev({ message_id: `small-${call}`, event_id: `small-${call}:${k}`, status: (["sent", "delivered", "read"] as const)[k] }));
      const res = await stub.ingest({ id, ...SP }, encodeBatch(batch));
      // Three event rows (the delivered one also carries the billing mark) and one outbox row.
      if (call > 0) expect(res.rowsWritten).toBe(4);
    }
    await runDurableObjectAlarm(stub);
    const next = await stub.ingest({ id, ...SP }, encodeBatch([ev()]));
    // This call's two rows, then the alarm's: the counter lines (one minute, one ledger line), four meta
    // rows and the next outbox table (2). The 20 flushed outbox rows cost nothing: their table is dropped.
    expect(next.rowsWritten).toBeGreaterThan(2 + 2);
    expect(next.rowsWritten).toBeLessThanOrEqual(2 + 2 + 4 + 2);
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: calls + 1 }]);
    await evictDurableObject(stub);
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: calls + 1 }]);
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toEqual({ accepted: 0, sent: calls, delivered: calls + 1, read: calls, failed: 0 });
  });

  it("reports the flushes' rows with the next call that commits, not with one that fails", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, ...SP }, encodeBatch([ev(), ev({ status: "sent" })]));
    await runDurableObjectAlarm(stub);
    const flushed = await runInDurableObject(stub, (instance) => (instance as unknown as { background: { rowsWritten: number } }).background.rowsWritten);
    expect(flushed).toBeGreaterThan(0);
    await runInDurableObject(stub, async (instance: ClientCounter) => {
      await expect(instance.ingest({ id, ...SP }, encodeBatch([ev({ event_id: "lone-\ud800-surrogate" })]))).rejects.toThrow(/round-trip/);
    });
    expect(await stub.ingest({ id, ...SP }, encodeBatch([ev()]))).toMatchObject({ backgroundRowsWritten: flushed, rowsWritten: flushed + 2 });
  });
});

describe("the minute counters in SQLite", () => {
  it("are one row per minute, by status and category, which later flushes add to", async () => {
    const { id, stub } = counter();
    const minute = Date.UTC(2026, 10, 20, 12, 0, 0);
    const stored = () =>
      runInDurableObject(stub, (_i, state) =>
        state.storage.sql.exec<{ minute: number; counts: string }>("SELECT minute, counts FROM minute_totals ORDER BY minute").toArray().map((r) => [r.minute, JSON.parse(r.counts)]),
      );
    await stub.ingest({ id, ...SP }, encodeBatch([
      ev({ occurred_at: minute + 1_000, status: "sent" }),
      ev({ occurred_at: minute + 2_000, status: "sent", category: "utility" }),
      ev({ occurred_at: minute + 3_000, status: "read" }),
      ev({ occurred_at: minute + 61_000, status: "sent", category: null }),
    ]));
    await runDurableObjectAlarm(stub);
    // Five status × category lines in two minutes: two rows.
    expect(await stored()).toEqual([
      [minute, { sent: { marketing: 1, utility: 1 }, read: { marketing: 1 } }],
      [minute + 60_000, { sent: { "": 1 } }],
    ]);
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ occurred_at: minute + 4_000, status: "sent" }), ev({ occurred_at: minute + 5_000, status: "failed", category: "utility" })]));
    await runDurableObjectAlarm(stub);
    expect(await stored()).toEqual([
      [minute, { sent: { marketing: 2, utility: 1 }, read: { marketing: 1 }, failed: { utility: 1 } }],
      [minute + 60_000, { sent: { "": 1 } }],
    ]);
    await evictDurableObject(stub);
    expect(await stub.counters(minute, minute + 120_000)).toEqual([
      { minute, accepted: 0, sent: 3, delivered: 0, read: 1, failed: 1 },
      { minute: minute + 60_000, accepted: 0, sent: 1, delivered: 0, read: 0, failed: 0 },
    ]);
    expect(await stub.totals(minute, minute + 60_000)).toEqual({ accepted: 0, sent: 3, delivered: 0, read: 1, failed: 1 });
  });
});

describe("objects created with the earlier layout", () => {
  it("keep their counters, do not count their outbox twice, and never reuse an outbox seq", async () => {
    const { id, stub } = counter();
    const old = ev({ status: "sent" });
    await runInDurableObject(stub, (_i, state) => {
      const sql = state.storage.sql;
      sql.exec("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, rows TEXT NOT NULL)");
      // Seqs up to 9 were used (files in the lake are named by them); 7 still waits in the outbox, counted.
      sql.exec("INSERT INTO outbox (seq, n, rows) VALUES (9, 0, '[]')");
      sql.exec("DELETE FROM outbox");
      sql.exec("INSERT INTO outbox (seq, n, rows) VALUES (7, 1, ?)", JSON.stringify([EVENT_COLUMNS.map((c) => old[c])]));
      sql.exec("DELETE FROM minute_totals");
      sql.exec(
        "CREATE TABLE minute_counts (minute INTEGER NOT NULL, status TEXT NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (minute, status, category)) WITHOUT ROWID",
      );
      sql.exec("INSERT INTO minute_counts VALUES (?, 'sent', 'marketing', 1)", minuteOf(old.occurred_at));
    });
    await evictDurableObject(stub);
    const read = ev({ status: "read" });
    expect(await stub.ingest({ id, ...SP }, encodeBatch([read]))).toMatchObject({ accepted: 1 });
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ sent: 1, read: 1 });
    const seqs = await runInDurableObject(stub, (_i, state) =>
      ["outbox_0", "outbox_10"].map((t) => state.storage.sql.exec<{ seq: number }>(`SELECT seq FROM ${t} ORDER BY seq`).toArray().map((r) => r.seq)),
    );
    expect(seqs).toEqual([[7], [10]]);
    await stub.flush();
    await evictDurableObject(stub);
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ sent: 1, read: 1 });
    // Both waiting rows reached the lake, the one below the old high-water mark too.
    const lake = await env.LAKE.list({ prefix: partitionPrefix(id, localDate(old.occurred_at, "UTC")) });
    const inLake = await Promise.all(lake.objects.map(async (o) => (await readParquet(await (await env.LAKE.get(o.key))!.arrayBuffer())).rows.map((r) => r.event_id)));
    expect(inLake.flat().sort()).toEqual([old.event_id, read.event_id].sort());
    expect(await stub.ingest({ id, ...SP }, encodeBatch([ev({ status: "failed" })]))).toMatchObject({ accepted: 1 });
    // The flush sealed the old tables (the next one starts at 11) and dropped them once written.
    const next = await runInDurableObject(stub, (_i, state) => {
      const tables = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name GLOB 'outbox*'").toArray().map((r) => r.name);
      return { tables, seqs: state.storage.sql.exec<{ seq: number }>("SELECT seq FROM outbox_11").toArray().map((r) => r.seq) };
    });
    expect(next).toEqual({ tables: ["outbox_11"], seqs: [11] });
  });
});

describe("dedup ids", () => {
  it("counts new, repeated and already-seen events exactly, whichever way the insert learns it", async () => {
    const { id, stub } = counter();
    const [a, b, c, d] = [ev({ status: "sent" }), ev({ status: "sent" }), ev({ status: "sent" }), ev({ status: "sent" })];
    await stub.ingest({ id, ...SP }, encodeBatch([a]));
    // After an all-new batch: a copy within the batch, then one seen in an earlier call next to a new one.
    const repeated = await stub.ingest({ id, ...SP }, encodeBatch([b, b]));
    expect(repeated).toMatchObject({ accepted: 1, duplicates: 1, rowsWritten: 2 });
    const mixed = await stub.ingest({ id, ...SP }, encodeBatch([a, c]));
    expect(mixed).toMatchObject({ accepted: 1, duplicates: 1, rowsWritten: 2 });
    // Right after a batch with already-seen events, and again once a batch had none.
    const e = ev({ status: "sent" });
    for (const batch of [[d, c], [e, e], [ev({ status: "sent" }), d]]) {
      expect(await stub.ingest({ id, ...SP }, encodeBatch(batch))).toMatchObject({ accepted: 1, duplicates: 1, rowsWritten: 2 });
    }
    const stored = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec(`SELECT COUNT(*) AS n FROM ${eventTableFor(Date.now())}`).one().n);
    expect(stored).toBe(6);
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ sent: 6 });
  });

  it("refuses a batch whose ids would not round-trip through SQLite, leaving no trace", async () => {
    const { id, stub } = counter();
    // Called inside the object: an RPC that throws also surfaces as an unhandled rejection in this isolate.
    await runInDurableObject(stub, async (instance: ClientCounter) => {
      await expect(instance.ingest({ id, ...SP }, encodeBatch([ev({ event_id: "lone-\ud800-surrogate" }), ev()]))).rejects.toThrow(/round-trip/);
    });
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toEqual({ accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 });
    // Nothing was committed, so the valid event of that batch is still new.
    const again = ev();
    expect(await stub.ingest({ id, ...SP }, encodeBatch([again]))).toMatchObject({ accepted: 1 });
  });
});

describe("grouped ingest calls", () => {
  /** The batches as separate ingest calls that reach the object in one turn (a hot client's calls queued at it). */
  const together = (stub: DurableObjectStub<ClientCounter>, id: string, batches: NotificationEvent[][]) =>
    runInDurableObject(stub, (instance: ClientCounter) => Promise.all(batches.map((b) => instance.ingest({ id, ...SP }, encodeBatch(b)))));

  it("calls that reach the object together share one transaction and one outbox row", async () => {
    const batches = () => Array.from({ length: 5 }, (_, i) => [ev({ occurred_at: Date.UTC(2026, 10, 20, 12, i) }), ev({ status: "sent" })]);
    const one = counter();
    const apart = [];
    for (const b of batches()) apart.push(await one.stub.ingest({ id: one.id, ...SP }, encodeBatch(b)));
    const grouped = counter();
    const results = await together(grouped.stub, grouped.id, batches());
    expect(results.map((r) => [r.accepted, r.duplicates])).toEqual(Array(5).fill([2, 0]));
    // The group's rows are reported once, on its first call: four outbox rows fewer than five calls apart.
    expect(results.slice(1).map((r) => r.rowsWritten)).toEqual([0, 0, 0, 0]);
    const sum = (rs: { rowsWritten: number }[]) => rs.reduce((n, r) => n + r.rowsWritten, 0);
    expect(sum(results)).toBe(sum(apart) - 4);
    expect(await grouped.stub.totals(0, Number.MAX_SAFE_INTEGER)).toEqual(await one.stub.totals(0, Number.MAX_SAFE_INTEGER));
    expect(await ledgerOf(grouped.stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 5 }]);
    // The lake gets every call's detail rows from the group's one outbox row (seqs name lake files).
    const flushed = async (stub: DurableObjectStub<ClientCounter>) => {
      await stub.flush();
      return runInDurableObject(stub, (_i, state) => Number(state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'lake_flushed_through'").one().value));
    };
    expect((await flushed(one.stub)) - (await flushed(grouped.stub))).toBe(4);
    const files = await env.LAKE.list({ prefix: partitionPrefix(grouped.id, "2026-11-20") });
    const rows = (await Promise.all(files.objects.map(async (o) => (await readParquet(await (await env.LAKE.get(o.key))!.arrayBuffer())).rows))).flat();
    expect(rows).toHaveLength(10);
  });

  it("bills a group in the time zone of its latest call, the one that knows the client best", async () => {
    const { id, stub } = counter();
    // 02:00 UTC on the 21st: the 20th in São Paulo, the 21st in Tokyo. The client moved to Tokyo between the calls.
    const at = Date.UTC(2026, 10, 21, 2);
    await runInDurableObject(stub, (instance: ClientCounter) =>
      Promise.all([
        instance.ingest({ id, ...SP }, encodeBatch([ev({ occurred_at: at })])),
        instance.ingest({ id, timezone: "Asia/Tokyo" }, encodeBatch([ev({ occurred_at: at })])),
      ]),
    );
    expect(await ledgerOf(stub, "2026-11-21")).toEqual([{ category: "marketing", country: "BR", count: 2 }]);
    expect(await stub.statedTimezone()).toBe("Asia/Tokyo");
  });

  it("states the ingest mix since the object started: calls and statuses by source, the commits they shared, rows written", async () => {
    const { id, stub } = counter();
    const shared = ev();
    const results = [
      await stub.ingest({ id, ...SP }, encodeBatch([ev(), ev(), ev()])),
      ...(await together(stub, id, [[shared, ev()], [shared], [ev({ source: "kafka" })]])),
      await stub.ingest({ id, ...SP }, encodeBatch([ev({ source: "kafka" }), ev({ source: "kafka" })])),
    ];
    const { ingest } = await stub.objectStatus(Date.now());
    expect(ingest).toEqual({
      since: ingest.since,
      commits: 3,
      rows_written: results.reduce((n, r) => n + r.rowsWritten, 0),
      whatsapp: { calls: 3, events: 6, accepted: 5 },
      kafka: { calls: 2, events: 3, accepted: 3 },
    });
    expect(ingest.since).toBeLessThanOrEqual(Date.now());

    // Kept in memory only: a restarted object starts counting again, and its storage is as it was.
    await evictDurableObject(stub);
    const restarted = await stub.objectStatus(Date.now());
    expect(restarted.ingest).toMatchObject({ commits: 0, rows_written: 0, whatsapp: { calls: 0, events: 0, accepted: 0 }, kafka: { calls: 0, events: 0, accepted: 0 } });
    expect(restarted.ingest.since).toBeGreaterThanOrEqual(ingest.since);
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ delivered: 8 });
  });

  it("counts an event that two calls of a group carry once, for the earlier call", async () => {
    const { id, stub } = counter();
    const shared = ev();
    const results = await together(stub, id, [[ev(), shared], [shared, ev({ status: "read" })], [shared]]);
    expect(results.map((r) => [r.accepted, r.duplicates])).toEqual([[2, 0], [1, 1], [0, 1]]);
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ delivered: 2, read: 1 });
  });

  it("hands the group's one rollup, with every call's events, to its last relaying call", async () => {
    const { id, stub } = counter();
    const at = Date.now();
    const results = await runInDurableObject(stub, (instance: ClientCounter) =>
      Promise.all([[ev({ occurred_at: at }), ev({ occurred_at: at, status: "sent" })], [ev({ occurred_at: at })]].map((b) =>
        instance.ingest({ id, timezone: "UTC" }, encodeBatch(b), { relayRollup: true }),
      )),
    );
    expect(results[0]!.rollup).toBeNull();
    expect(results[1]!.rollup).toMatchObject({ client_id: id, today: { delivered: 2, sent: 1 } });
  });

  it("a call that fails does not fail the calls it was grouped with", async () => {
    const { id, stub } = counter();
    const [before, bad, after] = [ev(), ev({ event_id: "lone-\ud800-surrogate" }), ev()];
    const outcomes = await runInDurableObject(stub, (instance: ClientCounter) =>
      Promise.allSettled([[before], [bad, ev()], [after]].map((b) => instance.ingest({ id, ...SP }, encodeBatch(b)))),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/round-trip/);
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ delivered: 2 });
    expect(await stub.ingest({ id, ...SP }, encodeBatch([before, after]))).toMatchObject({ accepted: 0, duplicates: 2 });
  });
});

describe("the billable-message ledger", () => {
  it("bills a message once on its first delivered/read, in the client's local day", async () => {
    const { id, stub } = counter();
    // 01:30 UTC on the 21st is still the 20th in São Paulo (UTC-3).
    const at = Date.UTC(2026, 10, 21, 1, 30);
    await stub.ingest({ id, ...SP }, encodeBatch([
      ev({ message_id: "m1", status: "delivered", occurred_at: at }),
      ev({ message_id: "m1", status: "read", occurred_at: at + 60_000 }),
    ]));
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "m1", status: "read", occurred_at: at + 60_000, event_id: "m1:read-retry" })]));
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
    expect(await ledgerOf(stub, "2026-11-21")).toEqual([]);
  });

  it("bills a delivered/read that came without pricing by its message's pricing, whichever arrives first", async () => {
    const { id, stub } = counter();
    const [day1, day2] = [Date.UTC(2026, 10, 20, 10), Date.UTC(2026, 10, 21, 10)];
    const priced = (message_id: string, status: Status, at: number) => ev({ message_id, status, occurred_at: at });
    const unpriced = (message_id: string, status: Status, at: number) => ev({ message_id, status, occurred_at: at, billable: null, pricing_type: null, category: null, country: null });
    const calls = [
      [priced("a", "sent", day1)], [unpriced("a", "read", day2)],
      [unpriced("b", "read", day2)], [priced("b", "sent", day1)],
      // The earliest delivered/read is billed, priced or not.
      [unpriced("c", "delivered", day1)], [priced("c", "read", day2)],
    ];
    for (const batch of calls) await stub.ingest({ id, timezone: "UTC" }, encodeBatch(batch));
    // A sent status carries its message's pricing but is never billed itself.
    expect(await ledgerOf(stub, "2026-11-21")).toEqual([{ category: "marketing", country: "BR", count: 2 }]);
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("does not bill sent, failed or free (service window, free entry point) messages", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, ...SP }, encodeBatch([
      ev({ status: "sent" }),
      ev({ status: "failed", billable: null, category: null, pricing_type: null }),
      ev({ status: "delivered", billable: false, pricing_type: "free_customer_service", category: "service" }),
      ev({ status: "read", billable: false, pricing_type: "free_entry_point", category: "marketing" }),
    ]));
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([]);
  });

  it("moves the bill to the earlier day when an earlier status arrives late (reordered delivery)", async () => {
    const { id, stub } = counter();
    const day2 = Date.UTC(2026, 10, 21, 15, 0);
    const day1 = Date.UTC(2026, 10, 20, 23, 0) - 6 * 3600_000;
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "late", status: "read", occurred_at: day2 })]));
    expect(await ledgerOf(stub, "2026-11-21")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "late", status: "delivered", occurred_at: day1 })]));
    expect(await ledgerOf(stub, "2026-11-21")).toEqual([]);
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("groups billable messages by category and country, unknown ones under their own keys", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([
      ev({ category: "utility" }),
      ev({ category: "utility" }),
      ev({ category: "utility", country: "MX" }),
      ev({ category: null, country: null }),
    ]));
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([
      { category: "unknown", country: "ZZ", count: 1 },
      { category: "utility", country: "BR", count: 2 },
      { category: "utility", country: "MX", count: 1 },
    ]);
  });

  it("remembers a billed message across receive-months, and keeps a month's totals after its table expires", async () => {
    const { id, stub } = counter();
    const now = Date.now();
    const lastMonth = eventTableFor(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() - 1, 15));
    // Billed last month on its delivered status, in a table of whole ids (written as the object did
    // before 2026-11-30); another message billed on its read status, whose delivered status comes late.
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec(legacyEventTableDdl(lastMonth));
      state.storage.sql.exec(
        `INSERT INTO ${lastMonth} VALUES ('m-old', 'm-old:delivered', '2026-10-15', 'marketing', 'BR', ?), ('m-late', 'm-late:read', '2026-10-14', 'utility', 'BR', ?)`,
        Date.UTC(2026, 9, 15, 12),
        Date.UTC(2026, 9, 14, 12),
      );
      state.storage.sql.exec("INSERT INTO ledger_daily VALUES ('2026-10-14', 'utility', 'BR', 1)");
    });
    await evictDurableObject(stub);
    const read = await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "m-old", event_id: "m-old:read", status: "read", occurred_at: Date.UTC(2026, 9, 16, 12) })]));
    expect(read.accepted).toBe(1);
    expect(await ledgerOf(stub, "2026-10-16")).toEqual([]);
    expect(await ledgerOf(stub, "2026-10-15")).toEqual([]);
    // The late delivered status takes the mark from the old table's read row.
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "m-late", event_id: "m-late:delivered", category: "utility", occurred_at: Date.UTC(2026, 9, 13, 12) })]));
    expect(await ledgerOf(stub, "2026-10-14")).toEqual([]);
    expect(await ledgerOf(stub, "2026-10-13")).toEqual([{ category: "utility", country: "BR", count: 1 }]);
    const unmarked = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec(`SELECT billed_at FROM ${lastMonth} WHERE message_id = 'm-late'`).one().billed_at,
    );
    expect(unmarked).toBeNull();

    const old = Date.UTC(2026, 6, 15, 12);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([ev({ message_id: "old-msg", occurred_at: old })]));
    await runDurableObjectAlarm(stub);
    await evictDurableObject(stub);
    expect(await ledgerOf(stub, "2026-07-15")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("counts a read without pricing under no category when its message's pricing named none", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([ev({ message_id: "no-category", status: "delivered", category: null })]));
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([ev({ message_id: "no-category", status: "read", billable: null, pricing_type: null, category: null, country: null })]));
    expect((await stub.categoryTotals(0, Number.MAX_SAFE_INTEGER)).map((c) => c.category)).toEqual([null]);
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "unknown", country: "BR", count: 1 }]);
  });

  it("keeps the bill on the status stored first when another of its message's statuses says the same instant", async () => {
    const { id, stub } = counter();
    const at = Date.UTC(2026, 10, 20, 15);
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "same-instant", status: "delivered", occurred_at: at, category: "marketing" })]));
    // The read of the same second, priced as another category: in one call the first of the two would be billed, so here too.
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "same-instant", status: "read", occurred_at: at, category: "utility" })]));
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("bills the earliest of a message's statuses stored without pricing when its pricing comes later, though a later one was stored first", async () => {
    const { id, stub } = counter();
    const unpriced = { billable: null, pricing_type: null, category: null, country: null } as const;
    // 23:59:50 on the 20th and 00:00:10 on the 21st in São Paulo (UTC-3); the read reaches the object first.
    const [delivered, read] = [Date.UTC(2026, 10, 21, 2, 59, 50), Date.UTC(2026, 10, 21, 3, 0, 10)];
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "two-waiting", status: "read", occurred_at: read, ...unpriced })]));
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "two-waiting", status: "delivered", occurred_at: delivered, ...unpriced })]));
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([]);
    // Its sent, priced, comes last: the message is billed on its delivered, the 20th.
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ message_id: "two-waiting", status: "sent", occurred_at: delivered - 5_000, category: "utility" })]));
    expect(await ledgerOf(stub, "2026-11-20")).toEqual([{ category: "utility", country: "BR", count: 1 }]);
    expect(await ledgerOf(stub, "2026-11-21")).toEqual([]);
  });
});

describe("the last hour's minutes", () => {
  it("stay equal to the stored counters as events arrive, flush and the object restarts", async () => {
    const { id, stub } = counter();
    const now = Date.now();
    // The first minute the object keeps summed in memory (an hour before the current one).
    const hourAgo = minuteOf(now) - 60 * 60_000;
    const stored = () =>
      runInDurableObject(stub, (instance: ClientCounter) => (instance as unknown as { reads: CounterReads }).reads.summedCounters(hourAgo, Number.MAX_SAFE_INTEGER));
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ occurred_at: now, status: "sent" }), ev({ occurred_at: now - 30 * 60_000, status: "read" })]));
    expect(await stub.counters(hourAgo, Number.MAX_SAFE_INTEGER)).toEqual(await stored());
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ occurred_at: now, status: "delivered" }), ev({ occurred_at: now - 3 * 3_600_000, status: "sent" }), ev({ occurred_at: hourAgo, status: "read" })]));
    await runDurableObjectAlarm(stub);
    await stub.ingest({ id, ...SP }, encodeBatch([ev({ occurred_at: now, status: "failed" })]));
    const live = await stub.counters(hourAgo, Number.MAX_SAFE_INTEGER);
    expect(live).toEqual(await stored());
    expect(live.map((m) => m.sent + m.delivered + m.read + m.failed)).toEqual([1, 1, 3]);
    // A range ends before the minute it names.
    expect(await stub.counters(hourAgo, minuteOf(now))).toEqual(live.slice(0, -1));
    await evictDurableObject(stub);
    expect(await stub.counters(hourAgo, Number.MAX_SAFE_INTEGER)).toEqual(live);
    // A range reaching past the last hour is read from SQLite.
    expect((await stub.counters(0, Number.MAX_SAFE_INTEGER)).length).toBe(4);
  });
});

describe("today's totals", () => {
  it("stay equal to the minute counters as events arrive, including after eviction", async () => {
    const { id, stub } = counter();
    const tz = "America/Sao_Paulo";
    // São Paulo's day turns at a minute turn, which the test keeps clear of.
    await clearOfMinuteTurn();
    const now = Date.now();
    const [start, end] = localDayRange(localDate(now, tz), tz);
    const sum = () => stub.totals(...localDayRange(localDate(Date.now(), tz), tz));
    expect(await stub.today(tz)).toEqual(await sum());
    // The day's first millisecond is today's.
    await stub.ingest({ id, timezone: tz }, encodeBatch([ev({ occurred_at: now, status: "sent" }), ev({ occurred_at: start, status: "read" })]));
    // Other days count in their own: three days ago, and tomorrow's first millisecond (an event stamped ahead of its time).
    await stub.ingest({ id, timezone: tz }, encodeBatch([ev({ occurred_at: now - 3 * 86_400_000, status: "sent" }), ev({ occurred_at: end, status: "delivered" })]));
    expect(await stub.today(tz)).toEqual({ accepted: 0, sent: 1, delivered: 0, read: 1, failed: 0 });
    expect(await stub.today(tz)).toEqual(await sum());
    await evictDurableObject(stub);
    await stub.ingest({ id, timezone: tz }, encodeBatch([ev({ occurred_at: now, status: "failed" })]));
    expect(await stub.today(tz)).toEqual({ accepted: 0, sent: 1, delivered: 0, read: 1, failed: 1 });
    const utcDay = new Date().toISOString().slice(0, 10);
    expect(await stub.today("UTC")).toEqual(await stub.totals(...localDayRange(utcDay, "UTC")));
  });

  it("count the client's own local day: 25 hours on a DST change, from a half or quarter hour, 14 h ahead of UTC or 11 h behind", async () => {
    // 04:30Z on 2027-11-08: 23:30 on the 7th in New York, whose 7th began at 04:00Z (EDT) and ends at
    // 05:00Z (EST); 10:15 on the 8th in Kathmandu (+05:45), 10:00 in Kolkata (+05:30), 18:30 in
    // Kiritimati (+14); 17:30 on the 7th in Pago Pago (−11), a day behind UTC's date. A day ahead of
    // the real clock: the flush alarms the ingest arms from the frozen clock then lie in the future.
    // Armed in the past, they fired at once, and one still running when the file ended failed the
    // run (vitest's "Closing rpc while resolve was pending").
    const now = Date.parse("2027-11-08T04:30:00Z");
    const days: [timezone: string, start: string, end: string][] = [
      ["America/New_York", "2027-11-07T04:00:00Z", "2027-11-08T05:00:00Z"],
      ["Asia/Kathmandu", "2027-11-07T18:15:00Z", "2027-11-08T18:15:00Z"],
      ["Asia/Kolkata", "2027-11-07T18:30:00Z", "2027-11-08T18:30:00Z"],
      ["Pacific/Kiritimati", "2027-11-07T10:00:00Z", "2027-11-08T10:00:00Z"],
      ["Pacific/Pago_Pago", "2027-11-07T11:00:00Z", "2027-11-08T11:00:00Z"],
    ];
    await withClock(
      () => now,
      async () => {
        for (const [tz, startText, endText] of days) {
          const { id, stub } = counter();
          const [start, end] = [Date.parse(startText), Date.parse(endText)];
          // Summed when first asked, then kept up to date by each ingest; summed again after eviction.
          expect(await stub.today(tz), tz).toEqual({ accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 });
          await stub.ingest(
            { id, timezone: tz },
            encodeBatch([
              ev({ occurred_at: start - 1, status: "sent" }),
              ev({ occurred_at: start, status: "read" }),
              ev({ occurred_at: now - 1, status: "delivered" }),
              ev({ occurred_at: end, status: "failed" }),
            ]),
          );
          const want = { accepted: 0, sent: 0, delivered: 1, read: 1, failed: 0 };
          expect(await stub.today(tz), tz).toEqual(want);
          await evictDurableObject(stub);
          expect(await stub.today(tz), `${tz}, summed`).toEqual(want);
        }
      },
    );
  });
});
