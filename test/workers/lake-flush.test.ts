import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import { flushedThrough } from "../../durable-objects/outbox.ts";
import { EVENT_COLUMNS, type NotificationEvent } from "../../schema/event.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { admin, authed, withMethods, call, counters, createClient, ingestKey, postEvents, signIn, withEnv } from "./helpers.ts";
import { DAY1, detailEvent, flush, parseCsv, readParquet, report } from "./lake-fixtures.ts";

const RANGE = { from: "2026-11-18T00:00:00Z", to: "2026-11-20T00:00:00Z" };

/** What the lake must hold for a bridged event: the canonical event (received_at set at ingest). */
function canonical(e: Record<string, unknown>): Record<string, unknown> {
  return {
    category: null, billable: null, pricing_type: null, phone_number_id: null, template: null, error_code: null, error_title: null,
    ...e,
    country: "BR",
    source: "kafka",
  };
}

function withoutReceivedAt(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map(({ received_at: _r, ...rest }) => rest).sort((a, b) => String(a.event_id).localeCompare(String(b.event_id)));
}

/** The outbox's generation tables (durable-objects/outbox.ts), oldest first. */
async function outboxTables(stub: DurableObjectStub<ClientCounter>): Promise<string[]> {
  return runInDurableObject(stub, (_i, state) =>
    state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'outbox_*'")
      .toArray()
      .map((r) => r.name)
      .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7))),
  );
}

/** Detail rows in the outbox not yet in the lake (rows up to the flushed-through seq wait only for their table's drop). */
async function outboxRows(stub: DurableObjectStub<ClientCounter>): Promise<number> {
  const tables = await outboxTables(stub);
  return runInDurableObject(stub, (_i, state) => {
    const through = flushedThrough(state.storage.sql);
    return tables.reduce((sum, t) => sum + state.storage.sql.exec<{ n: number }>(`SELECT COALESCE(SUM(n), 0) AS n FROM ${t} WHERE seq > ?`, through).one().n, 0);
  });
}

async function lakeKeys(clientId: string): Promise<string[]> {
  const page = await env.LAKE.list({ prefix: `lake/notifications/client_id=${clientId}/` });
  return page.objects.map((o) => o.key).sort();
}

/** Ingests 8 events across UTC midnight, plus a duplicate of one in a second request. */
async function ingestSample(clientId: string): Promise<Record<string, unknown>[]> {
  const events = Array.from({ length: 8 }, (_, i) => detailEvent(clientId, i));
  const key = await ingestKey();
  expect(await (await postEvents(events.slice(0, 5), key)).json()).toEqual({ accepted: 5, duplicates: 0, rejected: [] });
  expect(await (await postEvents([events[4], ...events.slice(5)], key)).json()).toEqual({ accepted: 3, duplicates: 1, rejected: [] });
  return events;
}

describe("outbox → lake flush", () => {
  it("arms the alarm when an ingest commits, at most a minute ahead", async () => {
    const { id } = await createClient();
    const before = Date.now();
    await ingestSample(id);
    const alarm = await runInDurableObject(counterOf(env, id), (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(alarm!).toBeGreaterThanOrEqual(before);
  });

  it("spreads the flushes of clients that start sending together over 20 s", async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => createClient()));
    const key = await ingestKey();
    const before = Date.now();
    await Promise.all(clients.map(({ id }) => postEvents([detailEvent(id, 1)], key)));
    const after = Date.now();
    const alarms = await Promise.all(clients.map(({ id }) => runInDurableObject(counterOf(env, id), (_i, state) => state.storage.getAlarm())));
    for (const at of alarms) {
      expect(at!).toBeGreaterThanOrEqual(before + 40_000);
      expect(at!).toBeLessThanOrEqual(after + 60_000);
    }
    expect(new Set(alarms.map((at) => Math.round((at! - before) / 1_000))).size).toBeGreaterThan(1);
  });

  it("writes one Parquet file per UTC date with deterministic keys and empties the outbox", async () => {
    const { id } = await createClient();
    await ingestSample(id);
    const stub = counterOf(env, id);
    expect(await outboxRows(stub)).toBe(8);
    const res = await flush(id);
    expect(res.status).toBe(200);
    const { files } = (await res.json()) as { files: string[] };
    expect(files).toEqual([
      `lake/notifications/client_id=${id}/date=2026-11-18/part-1-2.parquet`,
      `lake/notifications/client_id=${id}/date=2026-11-19/part-1-2.parquet`,
    ]);
    expect(await lakeKeys(id)).toEqual(files);
    expect(await outboxRows(stub)).toBe(0);
    // Nothing left: a second flush writes nothing.
    expect(await (await flush(id)).json()).toEqual({ files: [] });
  });

  it("never reuses an outbox seq once the outbox is empty, so a later flush cannot overwrite a file", async () => {
    const { id } = await createClient();
    await ingestSample(id);
    await flush(id);
    const stub = counterOf(env, id);
    await evictDurableObject(stub);
    expect(await (await postEvents([detailEvent(id, 20)], await ingestKey())).json()).toMatchObject({ accepted: 1 });
    const { files } = (await (await flush(id)).json()) as { files: string[] };
    expect(files).toEqual([`lake/notifications/client_id=${id}/date=2026-11-19/part-3-3.parquet`]);
    expect(await lakeKeys(id)).toHaveLength(3);
  });

  it("round trip: the CSV and Parquet reports return exactly the ingested rows, typed", async () => {
    const { id } = await createClient();
    const events = await ingestSample(id);
    await flush(id);
    const expected = withoutReceivedAt(events.map(canonical));

    const csv = await report(id, { ...RANGE, format: "csv" });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(csv.headers.get("content-disposition")).toBe(`attachment; filename="zapmeter-${id}-20261118T000000Z-20261120T000000Z.csv"`);
    const [header, ...records] = parseCsv(await csv.text());
    expect(header).toEqual(EVENT_COLUMNS);
    const fromCsv = records.map((r) => {
      const o: Record<string, unknown> = Object.fromEntries(EVENT_COLUMNS.map((c, i) => [c, r[i] === "" ? null : r[i]]));
      o.occurred_at = Number(o.occurred_at);
      o.received_at = Number(o.received_at);
      o.billable = o.billable === null ? null : o.billable === "true";
      o.error_code = o.error_code === null ? null : Number(o.error_code);
      return o;
    });
    expect(withoutReceivedAt(fromCsv)).toEqual(expected);
    expect(records[0]![EVENT_COLUMNS.indexOf("occurred_at")]).toBe(String(Date.UTC(2026, 10, 18, 23, 59, 58)));

    const iso = await report(id, { ...RANGE, format: "csv", times: "iso" });
    const [, ...isoRecords] = parseCsv(await iso.text());
    const timeColumns = ["occurred_at", "received_at"].map((c) => EVENT_COLUMNS.indexOf(c as (typeof EVENT_COLUMNS)[number]));
    expect(isoRecords[0]![timeColumns[0]!]).toBe("2026-11-18T23:59:58.000Z");
    expect(isoRecords.map((r) => r.map((v, i) => (timeColumns.includes(i) ? String(Date.parse(v)) : v)))).toEqual(records);

    const pq = await report(id, { ...RANGE, format: "parquet" });
    expect(pq.status).toBe(200);
    expect(pq.headers.get("content-type")).toBe("application/vnd.apache.parquet");
    expect(pq.headers.get("content-disposition")).toContain(".parquet\"");
    const { schema, rows } = await readParquet(await pq.arrayBuffer());
    expect(withoutReceivedAt(rows)).toEqual(expected);
    for (const r of rows) expect(typeof r.received_at).toBe("number");
    const col = (name: string) => schema.find((s) => s.name === name)!;
    expect(col("occurred_at")).toMatchObject({ type: "INT64", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" } });
    expect(col("received_at")).toMatchObject({ type: "INT64", converted_type: "TIMESTAMP_MILLIS" });
    expect(col("billable")).toMatchObject({ type: "BOOLEAN", repetition_type: "OPTIONAL" });
    expect(col("error_code")).toMatchObject({ type: "INT32", repetition_type: "OPTIONAL" });
    expect(col("event_id")).toMatchObject({ type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" });
  });

  it("the alarm flushes by itself", async () => {
    const { id } = await createClient();
    await ingestSample(id);
    const stub = counterOf(env, id);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await outboxRows(stub)).toBe(0);
    expect(await lakeKeys(id)).toHaveLength(2);
    // The outbox is empty; the alarm comes back once, in a few seconds, to check that the Overview
    // saved the client's last rollup (client-live.ts settle). Once it has, nothing stays armed.
    const again = await runInDurableObject(stub, (_i, state) => state.storage.getAlarm());
    expect(again).not.toBeNull();
    expect(again!).toBeLessThanOrEqual(Date.now() + 7_000);
    await runInDurableObject(env.OVERVIEW.get(env.OVERVIEW.idFromName("overview-0")), (instance) => (instance as unknown as { checkpoint(): void }).checkpoint());
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBeNull();
  });

  it("a failed R2 put keeps the outbox, re-arms with backoff, and the retry writes each row once", async () => {
    const { id } = await createClient();
    const events = await ingestSample(id);
    const stub = counterOf(env, id);
    // Fault injection: the second put (the 2026-11-19 file) fails after the first one was written.
    await runInDurableObject(stub, (instance) => {
      const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
      const real = lake.bucket;
      let puts = 0;
      lake.bucket = withMethods(real, {
        put: ((...args: Parameters<R2Bucket["put"]>) => {
          puts += 1;
          if (puts === 2) return Promise.reject(new Error("injected R2 outage"));
          return real.put(...args);
        }) as R2Bucket["put"],
      });
    });
    const before = Date.now();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await outboxRows(stub)).toBe(8);
    expect(await lakeKeys(id)).toEqual([`lake/notifications/client_id=${id}/date=2026-11-18/part-1-2.parquet`]);
    const retryAt = await runInDurableObject(stub, (_i, state) => state.storage.getAlarm());
    expect(retryAt).toBeGreaterThan(before);
    // The first retry comes after 5 s, before anything else would wake the object.
    expect(retryAt).toBeLessThanOrEqual(Date.now() + 5_000);

    // Rows arriving meanwhile, even at a fresh instance of the object (an eviction), do not change the
    // range being retried nor take its seqs.
    await evictDurableObject(stub);
    const late = detailEvent(id, 100);
    await postEvents([late], await ingestKey());
    // The retry alarm (5 s) runs here, unless the runtime already ran it on time.
    await runDurableObjectAlarm(stub);
    expect(await lakeKeys(id)).toEqual([
      `lake/notifications/client_id=${id}/date=2026-11-18/part-1-2.parquet`,
      `lake/notifications/client_id=${id}/date=2026-11-19/part-1-2.parquet`,
      `lake/notifications/client_id=${id}/date=2026-11-19/part-3-3.parquet`,
    ]);
    expect(await outboxRows(stub)).toBe(0);
    // Both sealed tables went with DROP TABLE once all their rows were in the lake; the newest waits for ingest.
    expect(await outboxTables(stub)).toEqual(["outbox_4"]);

    const { rows } = await readParquet(await (await report(id, { ...RANGE, format: "parquet" })).arrayBuffer());
    expect(withoutReceivedAt(rows)).toEqual(withoutReceivedAt([...events, late].map(canonical)));
  });
  it("a flush whose last write rolls back loses no counter change, then or after a restart", async () => {
    const { id } = await createClient();
    await ingestSample(id);
    const stub = counterOf(env, id);
    const counted = async () => (await counters(id, RANGE.from, RANGE.to)).body.minutes.reduce((n, m) => n + m.sent! + m.delivered! + m.read! + m.failed!, 0);
    expect(await counted()).toBe(8);
    // Fault injection: the flush's closing transaction fails after it wrote the pending counters.
    await runInDurableObject(stub, async (instance) => {
      const outbox = (instance as unknown as { outbox: { markFlushed: (...args: unknown[]) => void } }).outbox;
      const real = outbox.markFlushed;
      outbox.markFlushed = () => {
        outbox.markFlushed = real;
        throw new Error("injected storage failure");
      };
      await expect(instance.flush()).rejects.toThrow("injected storage failure");
    });
    expect(await counted()).toBe(8);
    // The next writes build on what is stored, not on the rolled-back changes.
    await postEvents([detailEvent(id, 100)], await ingestKey());
    expect((await flush(id)).status).toBe(200);
    expect(await outboxRows(stub)).toBe(0);
    expect(await counted()).toBe(9);
    await evictDurableObject(stub);
    expect(await counted()).toBe(9);
  });
});

describe("a report's flush first", () => {
  it("writes what was accepted before the report was asked for, not events that keep arriving during it", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    await postEvents(Array.from({ length: 5 }, (_, i) => detailEvent(id, i)), key);
    await flush(id);
    // Each put of the flush lets another event in first, as steady traffic would (up to 50).
    let puts = 0;
    await runInDurableObject(counterOf(env, id), (instance) => {
      const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
      const real = lake.bucket;
      lake.bucket = withMethods(real, {
        put: (async (...args: Parameters<R2Bucket["put"]>) => {
          if (++puts <= 50) await postEvents([detailEvent(id, 10 + puts)], key);
          return real.put(...args);
        }) as R2Bucket["put"],
      });
    });
    await postEvents([detailEvent(id, 6)], key);
    const rows = parseCsv(await (await report(id, RANGE)).text()).slice(1);
    // One call waited at the request: one file. The flush used to chase the arrivals, a file each.
    expect(puts).toBe(1);
    expect(rows).toHaveLength(6);
    // What arrived meanwhile is the alarm's to write, as any other late arrival.
    expect(await runInDurableObject(counterOf(env, id), (i: ClientCounter) => i.objectStatus(Date.now()).lake_backlog_events)).toBe(1);
  });
});

describe("large outboxes", () => {
  /** `count` sent events of one client, numbered from `first`, one ingest call's batch. */
  const sentEvents = (id: string, first: number, count: number): NotificationEvent[] =>
    Array.from({ length: count }, (_, i) => {
      const n = first + i;
      return {
        event_id: `${id}-${n}:sent`, message_id: `${id}-${n}`, client_id: id, status: "sent", occurred_at: DAY1 - 3_600_000 + n,
        received_at: DAY1, category: "utility", billable: null, pricing_type: null, recipient: "5511987654321", country: "BR",
        phone_number_id: null, template: null, error_code: null, error_title: null, source: "kafka",
      };
    });
  const prefix = (id: string) => `lake/notifications/client_id=${id}/date=2026-11-18/`;
  const rowsOf = async (key: string) => Number((await env.LAKE.head(key))!.customMetadata!.rows);

  it("arm the alarm at once and flush in batches of at most 25,000 rows (one row group each)", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    const batch = (c: number) => sentEvents(id, c * 10_000, 10_000);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch(batch(0)));
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch(batch(1)));
    // 20,000 rows wait: the alarm is still a minute away. The third call makes a full batch: due now.
    const [before, after] = await runInDurableObject(stub, async (instance, state) => {
      const minuteAway = await state.storage.getAlarm();
      await instance.ingest({ id, timezone: "UTC" }, encodeBatch(batch(2)));
      return [minuteAway, await state.storage.getAlarm()];
    });
    expect(before!).toBeGreaterThan(Date.now() + 30_000);
    expect(after!).toBeLessThanOrEqual(Date.now());
    // The runtime may already have run that alarm; either way the rows leave in ≤ 25,000-row batches.
    await runDurableObjectAlarm(stub);
    await stub.flush();
    expect(await lakeKeys(id)).toEqual([`${prefix(id)}part-1-2.parquet`, `${prefix(id)}part-3-3.parquet`]);
    expect(await Promise.all(["1-2", "3-3"].map((r) => rowsOf(`${prefix(id)}part-${r}.parquet`)))).toEqual([20_000, 10_000]);
    expect(await outboxRows(stub)).toBe(0);
    expect(await outboxTables(stub)).toEqual(["outbox_4"]);
  }, 60_000);

  it("at exactly 25,000 rows: due at once (24,999 wait), flushed as one file of one row group; the next row starts the next file", async () => {
    const { id } = await createClient();
    const stub = counterOf(env, id);
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch(sentEvents(id, 0, 12_500)));
    await stub.ingest({ id, timezone: "UTC" }, encodeBatch(sentEvents(id, 12_500, 12_499)));
    const [before, after] = await runInDurableObject(stub, async (instance, state) => {
      const waiting = await state.storage.getAlarm();
      await instance.ingest({ id, timezone: "UTC" }, encodeBatch(sentEvents(id, 24_999, 1)));
      return [waiting, await state.storage.getAlarm()];
    });
    expect(before!).toBeGreaterThan(Date.now() + 30_000);
    expect(after!).toBeLessThanOrEqual(Date.now());
    await runInDurableObject(stub, (instance) => instance.ingest({ id, timezone: "UTC" }, encodeBatch(sentEvents(id, 25_000, 1))));
    await runDurableObjectAlarm(stub);
    await stub.flush();
    const [full, next] = [`${prefix(id)}part-1-3.parquet`, `${prefix(id)}part-4-4.parquet`];
    expect(await lakeKeys(id)).toEqual([full, next]);
    const { rowGroups, rows } = await readParquet(await (await env.LAKE.get(full))!.arrayBuffer());
    expect(rowGroups).toEqual([25_000]);
    expect(rows.map((r) => r.event_id)).toEqual(sentEvents(id, 0, 25_000).map((e) => e.event_id));
    expect(await rowsOf(next)).toBe(1);
    expect(await outboxRows(stub)).toBe(0);
  }, 60_000);
});

describe("POST /v1/admin/flush", () => {
  it("flushes every client when no client_id is given", async () => {
    const a = await createClient();
    const b = await createClient();
    await postEvents([detailEvent(a.id, 1), detailEvent(b.id, 2)], await ingestKey());
    const { files } = (await (await flush()).json()) as { files: string[] };
    expect(files).toEqual(expect.arrayContaining([expect.stringContaining(`client_id=${a.id}/`), expect.stringContaining(`client_id=${b.id}/`)]));
  });

  it("404 for an unknown client, 400 for a bad id, 403 for a non-admin", async () => {
    expect((await flush("nobody-here")).status).toBe(404);
    expect((await flush("bad id!")).status).toBe(400);
    const { id } = await createClient();
    expect((await flush(id, await signIn("viewer", [id]))).status).toBe(403);
    expect((await flush(id, await signIn("finance"))).status).toBe(403);
  });

  it("answers 503 flush_failed, naming the clients to retry, when an outbox could not be written, and audits the attempt", async () => {
    const { id } = await createClient();
    // Every ClientCounter's flush fails, as when R2 refuses the object's writes.
    const counters = { ...env.CLIENT_COUNTER, idFromName: (name: string) => env.CLIENT_COUNTER.idFromName(name), get: () => ({ flush: () => Promise.reject(new Error("R2 is down")) }) };
    const token = await admin();
    const res = await withEnv({ CLIENT_COUNTER: counters as unknown as Env["CLIENT_COUNTER"] }, `/v1/admin/flush?client_id=${id}`, authed(token, { method: "POST" }));
    expect([res.status, await res.json()]).toEqual([503, { error: { code: "flush_failed", message: expect.any(String), details: { clients: [id], files: [] } } }]);
    const audit = (await (await call(`/v1/admin/audit?action=lake.flush&target=${id}`, authed(token))).json()) as { entries: { details: unknown }[] };
    expect(audit.entries.map((e) => e.details)).toEqual([{ files: 0, failed: [id] }]);
  });
});
