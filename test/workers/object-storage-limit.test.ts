import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { eventTableFor } from "../../durable-objects/client-counter-tables.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import type { NotificationEvent } from "../../schema/event.ts";
import { createClient, failingBucket, withClockAhead } from "./helpers.ts";
import { DAY1 } from "./lake-fixtures.ts";
import { FULL, fillUp, type Fullness } from "./full-storage.ts";

const DAY = 86_400_000;

const sent = (id: string, n: number, receivedAt = DAY1): NotificationEvent => ({
  event_id: `${id}-${n}:sent`, message_id: `${id}-${n}`, client_id: id, status: "sent", occurred_at: DAY1 + n,
  received_at: receivedAt, category: "utility", billable: null, pricing_type: null, recipient: "5511987654321", country: "BR",
  phone_number_id: null, template: null, error_code: null, error_title: null, source: "kafka",
});

const eventTables = (stub: DurableObjectStub<ClientCounter>) =>
  runInDurableObject(stub, (_i, s) =>
    s.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'events_[0-9]*' ORDER BY name").toArray().map((r) => r.name),
  );

const sentCounted = async (stub: DurableObjectStub<ClientCounter>) => (await stub.totals(0, Number.MAX_SAFE_INTEGER)).sent;

/** Sets the bucket the object's lake flush writes to; whether it had the real one. */
const useBucket = (stub: DurableObjectStub<ClientCounter>, bucket: R2Bucket) =>
  runInDurableObject(stub, (instance) => {
    const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
    const was = lake.bucket;
    lake.bucket = bucket;
    return was === env.LAKE;
  });

/**
 * An admin flush (which, unlike the alarm, does not upsert the counters first) that R2 refuses: the
 * outbox table is sealed and its range kept. Then the object is full, and dropping an outbox table
 * would not be room enough for the counters' upsert: the flush, run again, is refused.
 */
async function flushRefusedThenFull(stub: DurableObjectStub<ClientCounter>): Promise<void> {
  await useBucket(stub, failingBucket);
  await runInDurableObject(stub, (instance) => expect(instance.flush()).rejects.toThrow("R2 is down"));
  await useBucket(stub, env.LAKE);
  await fillUp(stub, { full: true, freedBy: /^DROP TABLE EVENTS_/ });
  await runInDurableObject(stub, (instance) => expect(instance.flush()).rejects.toThrow(FULL));
}

describe("an object at its storage limit", () => {
  it("drops its expired event tables when a new month's ingest comes, before the call writes, and takes the call", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 1, Date.now()), sent(id, 2, Date.now())]));
    expect(await eventTables(stub)).toHaveLength(1);
    // Full now; four months on, that table is past its retention and its DROP frees the space.
    const state: Fullness = { full: true, refused: [], freedBy: /^DROP TABLE (EVENTS|OUTBOX)_/ };
    await fillUp(stub, state);
    const { results, current } = await withClockAhead(120 * DAY, async () => {
      const out: string[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        const r = await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 10 + attempt, Date.now())]));
        out.push(`accepted ${r.accepted}`);
      }
      return { results: out, current: eventTableFor(Date.now()) };
    });
    expect({ results, tables: await eventTables(stub), refused: state.refused }).toEqual({ results: ["accepted 1", "accepted 1", "accepted 1"], tables: [current], refused: [] });
  });

  it("drops its expired event tables in the alarm, before the alarm's own writes, with no ingest to come", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 1, Date.now())]));
    const state: Fullness = { full: true, refused: [], freedBy: /^DROP TABLE (EVENTS|OUTBOX)_/ };
    await fillUp(stub, state);
    await withClockAhead(120 * DAY, () => runInDurableObject(stub, (instance) => instance.alarm()));
    expect({ tables: await eventTables(stub), refused: state.refused }).toEqual({ tables: [], refused: [] });
    expect(await sentCounted(stub)).toBe(1);
  });

  it("drains its outbox once R2 answers again after it filled up during the outage, losing no count", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 1), sent(id, 2), sent(id, 3)]));
    // R2 refuses: the flush keeps its rows and backs off (the backlog grows in the object meanwhile).
    expect(await useBucket(stub, failingBucket)).toBe(true);
    await runDurableObjectAlarm(stub);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 4)]));
    // Days of backlog later the object is at its limit; then R2 comes back.
    const state: Fullness = { full: true, refused: [], freedBy: /^DROP TABLE (EVENTS|OUTBOX)_/ };
    await fillUp(stub, state);
    await useBucket(stub, env.LAKE);
    for (let i = 0; i < 3; i++) await withClockAhead((i + 1) * 600_000, () => runInDurableObject(stub, (instance) => instance.alarm()));
    // The alarm's upsert of the pending counters was refused and the alarm went on to the lake
    // flush, which dropped the table it had written (the counters held its calls) before its own
    // writes, so these went through.
    expect(state.refused).toEqual(["INSERT INTO MINUTE_TOTALS"]);
    const status = await runInDurableObject(stub, (i: ClientCounter) => i.objectStatus(Date.now()));
    expect({ backlog: status.lake_backlog_events, full: state.full }).toEqual({ backlog: 0, full: false });
    expect(await sentCounted(stub)).toBe(4);
    await evictDurableObject(stub);
    expect(await sentCounted(stub)).toBe(4);
  });

  it("never drops an outbox table whose calls the stored counters do not hold yet, though R2 has its rows", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 1), sent(id, 2), sent(id, 3)]));
    // Its counters only in memory and in the outbox.
    await flushRefusedThenFull(stub);
    const outboxTables = await runInDurableObject(stub, (_i, s) => s.storage.sql.exec("SELECT name FROM sqlite_master WHERE name GLOB 'outbox_[0-9]*'").toArray().length);
    expect(outboxTables).toBe(2);
    // A restart rebuilds the counters from the outbox: they are all there.
    await evictDurableObject(stub);
    expect(await sentCounted(stub)).toBe(3);
  });
});

describe("the flush's early drop of a written outbox table", () => {
  it("waits for stored counters that hold the whole range, not only its start", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    // Call 1 spreads over 2,000 minutes, so its counters are stored at once (aggregates_through 1);
    // call 2's stay in memory and in its outbox row.
    const wide = Array.from({ length: 2_000 }, (_, i) => ({ ...sent(id, i), occurred_at: DAY1 + i * 60_000 }));
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch(wide));
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 5_000)]));
    expect(await runInDurableObject(stub, (_i, s) => s.storage.sql.exec("SELECT value FROM meta WHERE key = 'aggregates_through'").one().value)).toBe("1");
    await flushRefusedThenFull(stub);
    await evictDurableObject(stub);
    expect(await sentCounted(stub)).toBe(2_001);
  });
});

describe("the flush alarm after a failed alarm run", () => {
  it("re-arms for new rows once the runtime has dropped an alarm whose handler kept throwing", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 1)]));
    expect(await runInDurableObject(stub, (_i, s) => s.storage.getAlarm())).not.toBeNull();
    await runInDurableObject(stub, async (instance, s) => {
      const self = instance as unknown as { dropExpiredEventTables: (...a: unknown[]) => void };
      const real = self.dropExpiredEventTables;
      self.dropExpiredEventTables = () => {
        throw new Error("injected storage failure");
      };
      // The alarm's first step fails: alarm() throws before the lake flush runs. Cloudflare retries a
      // throwing alarm() up to 6 times, then drops it.
      await expect(instance.alarm()).rejects.toThrow("injected storage failure");
      await s.storage.deleteAlarm();
      self.dropExpiredEventTables = real;
    });
    // Minutes later (the runtime's retries, 2 s doubling, are over) new rows come in.
    const status = await withClockAhead(10 * 60_000, async () => {
      await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 2), sent(id, 3)]));
      return runInDurableObject(stub, (i: ClientCounter) => i.objectStatus(Date.now()));
    });
    expect({ backlog: status.lake_backlog_events, alarm: await runInDurableObject(stub, (_i, s) => s.storage.getAlarm()) }).toEqual({ backlog: 3, alarm: expect.any(Number) });
  });
});

describe("an object nearing its storage limit", () => {
  it("logs counter_storage_high from its alarm: a warning past 70 %, an error past 90 %, at most once an hour per level", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch([sent(id, 1)]));
    const size = { bytes: 6_900_000_000 };
    await runInDurableObject(stub, (_i, s) => {
      Object.defineProperty(s.storage.sql, "databaseSize", { get: () => size.bytes, configurable: true });
    });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const lines = () =>
      [...warn.mock.calls, ...error.mock.calls]
        .map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)
        .filter((l) => l.event === "counter_storage_high")
        .map((l) => `${l.level} ${l.percent}`);
    const alarmAt = (ahead: number, bytes: number) => {
      size.bytes = bytes;
      return withClockAhead(ahead, () => runInDurableObject(stub, (instance) => instance.alarm()));
    };
    try {
      await alarmAt(0, 6_900_000_000);
      expect(lines()).toEqual([]);
      await alarmAt(0, 7_500_000_000);
      await alarmAt(60_000, 7_600_000_000);
      expect(lines()).toEqual(["warn 75"]);
      await alarmAt(120_000, 9_100_000_000);
      await alarmAt(180_000, 9_200_000_000);
      expect(lines()).toEqual(["warn 75", "error 91"]);
      await alarmAt(125 * 60_000, 9_300_000_000);
      expect(lines()).toEqual(["warn 75", "error 91", "error 93"]);
      const [line] = error.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === "counter_storage_high");
      expect(line).toEqual({ level: "error", event: "counter_storage_high", client_id: id, shard: 0, storage_bytes: 9_100_000_000, storage_limit_bytes: 10_000_000_000, percent: 91 });
    } finally {
      warn.mockRestore();
      error.mockRestore();
    }
  });
});
