import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { clients } from "../../schema/db.ts";
import { DAY_MS, utcDate } from "../../schema/time.ts";
import { closedDays } from "../../workers/lake/closed-days.ts";
import { compactPartition } from "../../workers/lake/compaction.ts";
import { parsePart } from "../../workers/lake/layout.ts";
import { compactionJob } from "../../workers/lake/jobs.ts";
import { reportRows, reportStream } from "../../workers/lake/report.ts";
import { admin, authed, call, withMethods, createClient, db, failingBucket, ingestKey, messageIn, postEvents, runCron, withClockAhead } from "./helpers.ts";
import { countingGets, DAY1, detailEvent, flush, parseCsv, partitionKeys, readParquet, reportEventIds, setBucket } from "./lake-fixtures.ts";

const DAY = "2026-11-18";
const RANGE = { from: "2026-11-18T00:00:00Z", to: "2026-11-19T00:00:00Z", format: "parquet" };
const HOUSEKEEPING_AT = Date.parse("2026-11-20T03:30:00Z");

// A test that fails between a console spy and its mockRestore() would leave the spy, with its calls,
// to the next test that spies: vi.spyOn hands back the same mock.
afterEach(() => vi.restoreAllMocks());

const keys = (clientId: string, day = DAY) => partitionKeys(clientId, day);
const reportIds = (clientId: string, range = RANGE) => reportEventIds(clientId, range);

/** `files` flushes of events shortly before `end` (DAY1: late on DAY): that many small files. */
async function smallFiles(clientId: string, end = DAY1, files = 3): Promise<string[]> {
  const key = await ingestKey();
  const ids: string[] = [];
  for (let f = 0; f < files; f++) {
    // Offsets that stay on end's day (DAY1 is 23:59:58; go back in time).
    const events = Array.from({ length: 4 }, (_, i) => -(f * 10 + i + 10)).map((k) => detailEvent(clientId, k, { occurred_at: end + k * 1_000 }));
    await postEvents(events, key);
    await flush(clientId);
    ids.push(...events.map((e) => e.event_id as string));
  }
  return ids.sort();
}

/** A client of two shards with two small files of each on DAY: four in all. */
async function twoFilesPerShard(): Promise<string> {
  const { id } = await createClient({ shards: 2 });
  const key = await ingestKey();
  for (let round = 0; round < 2; round++) {
    await postEvents([0, 1].map((shard) => detailEvent(id, -(round * 10 + shard + 10), { message_id: messageIn(shard, 2), status: "sent" })).map((e) => ({ ...e, event_id: `${e.message_id as string}:sent` })), key);
    await flush(id);
  }
  expect(await keys(id)).toHaveLength(4);
  return id;
}

/** A client with three small files on DAY and three on yesterday (inside the compaction window by the real clock). */
async function smallFilesOnTwoDays(): Promise<{ id: string; yesterday: string; stub: DurableObjectStub<ClientCounter> }> {
  const { id } = await createClient();
  const yesterday = utcDate(Date.now() - DAY_MS);
  await smallFiles(id, Date.parse(`${yesterday}T12:00:00Z`));
  await smallFiles(id);
  return { id, yesterday, stub: counterOf(env, id) };
}

interface Asked {
  client_id: string;
  days: string[];
  failures: number;
  retry_at: number;
}

/** Asks `clientId`'s object for `day` with the lake failing, and runs its alarm: the day waits for a retry. */
async function failedOnce(clientId: string, day: string): Promise<void> {
  await setBucket(clientId, failingBucket);
  await counterOf(env, clientId).compactLake(clientId, [day]);
  await compactionAlarm(clientId);
  expect((await askedOf(clientId))!).toMatchObject({ days: [day], failures: 1 });
}

/** The compaction a client's object was asked for, as its `meta` holds it (null once done). */
async function askedOf(clientId: string): Promise<Asked | null> {
  const value = await runInDurableObject(counterOf(env, clientId), (_i, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'lake_compaction'").toArray()[0]?.value);
  return value === undefined ? null : (JSON.parse(value) as Asked);
}

/**
 * Runs the alarm that a compaction request armed for now (the runtime may have started it already)
 * and waits until it is through: the request done, or its retry due later.
 */
async function compactionAlarm(clientId: string): Promise<void> {
  await runDurableObjectAlarm(counterOf(env, clientId));
  await vi.waitFor(
    async () => {
      const asked = await askedOf(clientId);
      expect(asked === null || asked.retry_at > Date.now()).toBe(true);
    },
    { timeout: 20_000, interval: 50 },
  );
}

/** The nightly cron at `at`, then `clientId`'s object's alarm, which compacts what the cron asked for. */
async function runHousekeeping(clientId: string, at = HOUSEKEEPING_AT): Promise<void> {
  await runCron("30 3 * * *", at);
  await compactionAlarm(clientId);
}

/** The client objects, each `compactLake` and `compactLakeNow` call (but `unreachable`'s, which fails) noted (object id, client, days) on its way. */
function askingObjects(unreachable?: string): { objects: DurableObjectNamespace<ClientCounter>; asked: [string, string, string[]][] } {
  const asked: [string, string, string[]][] = [];
  const objects = withMethods(env.CLIENT_COUNTER, {
    get: (objectId: DurableObjectId) => {
      const stub = env.CLIENT_COUNTER.get(objectId);
      // An object of its own: a stub's methods cannot be bound through a Proxy (RPC would look for a remote `bind`).
      return {
        compactLake: (clientId: string, days: string[]) => {
          if (clientId === unreachable) return Promise.reject(new Error("Network connection lost."));
          asked.push([objectId.toString(), clientId, days]);
          return stub.compactLake(clientId, days);
        },
        compactLakeNow: (clientId: string, date: string) => {
          asked.push([objectId.toString(), clientId, [date]]);
          return stub.compactLakeNow(clientId, date);
        },
        // Asked of a sharded client's other shards, which have nothing to compact.
        expireEventTables: () => stub.expireEventTables(),
      } as unknown as DurableObjectStub<ClientCounter>;
    },
  } as Partial<DurableObjectNamespace<ClientCounter>>);
  return { objects, asked };
}

/** Holds every listing of the lake by `clientId`'s object until `release`; `listed` counts them. */
async function holdListings(clientId: string): Promise<{ release: () => void; listed: () => number }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let listed = 0;
  await setBucket(
    clientId,
    withMethods(env.LAKE, {
      list: async (o?: R2ListOptions) => {
        listed += 1;
        await gate;
        return env.LAKE.list(o);
      },
    }),
  );
  return { release, listed: () => listed };
}

/** `POST /v1/admin/lake/compact` as an admin, with other bindings when given. */
async function compactNow(clientId: string, date: string, overrides?: Partial<Env>): Promise<Response> {
  return call(`/v1/admin/lake/compact?client_id=${encodeURIComponent(clientId)}&date=${date}`, authed(await admin(), { method: "POST" }), overrides);
}

/**
 * `compactNow` of DAY with the client's object reading the lake through `bucket` (then back to the
 * real one); the `compaction_failed` lines it logged.
 */
async function compactThrough(clientId: string, bucket: R2Bucket): Promise<{ res: Response; failed: Record<string, unknown>[] }> {
  await setBucket(clientId, bucket);
  const logged = vi.spyOn(console, "error");
  try {
    const res = await compactNow(clientId, DAY);
    return { res, failed: linesOf(logged, "compaction_failed") };
  } finally {
    logged.mockRestore();
    await setBucket(clientId, env.LAKE);
  }
}

/** The details of the `lake.compact` audit entries of `clientId`, newest first. */
async function compactAudits(clientId: string): Promise<unknown[]> {
  const res = await call(`/v1/admin/audit?action=lake.compact&target=${clientId}`, authed(await admin()));
  return ((await res.json()) as { entries: { details: unknown }[] }).entries.map((e) => e.details);
}

/** The JSON log lines of `event` that `spy` (console.info or console.error) saw. */
function linesOf(spy: { mock: { calls: unknown[][] } }, event: string): Record<string, unknown>[] {
  return spy.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).filter((l) => l.event === event);
}

describe("housekeeping compaction", () => {
  it("merges a closed day's small files into one covering file, rows unchanged", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    expect(await keys(id)).toEqual([1, 2, 3].map((s) => `lake/notifications/client_id=${id}/date=${DAY}/part-${s}-${s}.parquet`));
    expect(await reportIds(id)).toEqual(ids);

    await runHousekeeping(id);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);

    // Running again changes nothing.
    await runHousekeeping(id);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
  });

  it("reads the small files ahead, five GETs at once, and writes their rows in seq order", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id, DAY1, 8);
    const smallKeys = (await keys(id)).sort((a, b) => parsePart(a, 0)!.first - parsePart(b, 0)!.first);
    expect(smallKeys).toHaveLength(8);
    const inSeqOrder: unknown[] = [];
    for (const key of smallKeys) inSeqOrder.push(...(await readParquet(await (await env.LAKE.get(key))!.arrayBuffer())).rows.map((r) => r.event_id));
    const { bucket, most } = countingGets(env.LAKE);

    const [compacted] = await compactPartition(bucket, id, DAY);
    // Five at once (READ_AHEAD_FILES): of an invocation's six calls waiting for an answer, one is left free.
    expect(most()).toBe(5);
    const { rows } = await readParquet(await (await env.LAKE.get(compacted!.key))!.arrayBuffer());
    expect(rows.map((r) => r.event_id)).toEqual(inSeqOrder);
    expect([...inSeqOrder].sort()).toEqual(ids);
  });

  it("a report whose listed files two compactions replace before it opens them reads their rows from the compacted file, each once", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    let raced = false;
    // The report lists 1-1, 2-2 and 3-3; as it opens 2-2 a compaction (1-3), a late event (4-4) and the next compaction (1-4) pass.
    const racing = withMethods(env.LAKE, {
      get: (async (key: string, options?: R2GetOptions) => {
        if (!raced && key.endsWith("/part-2-2.parquet")) {
          raced = true;
          await compactPartition(env.LAKE, id, DAY);
          await postEvents([detailEvent(id, -100)], await ingestKey());
          await flush(id);
          await compactPartition(env.LAKE, id, DAY);
        }
        return env.LAKE.get(key, options);
      }) as R2Bucket["get"],
    });
    const csv = await new Response(await reportStream(racing, id, { from: Date.parse(RANGE.from), to: Date.parse(RANGE.to) }, "csv", "epoch_ms")).text();
    expect(raced).toBe(true);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-4.parquet`]);
    expect(parseCsv(csv).slice(1).map((r) => r[EVENT_COLUMNS.indexOf("event_id")]).sort()).toEqual(ids);
  });

  it("late events after compaction land in a new file that the next run folds in, and a re-written old range is never read twice", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    await runHousekeeping(id);
    const late = detailEvent(id, -100);
    await postEvents([late], await ingestKey());
    await flush(id);
    // Stale copies of absorbed ranges (a flush retried across the compaction; a source the compaction
    // has not deleted yet, starting where the compacted file starts) are superseded, not read.
    const old = await (await env.LAKE.get(`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`))!.arrayBuffer();
    for (const range of ["2-2", "1-1"]) await env.LAKE.put(`lake/notifications/client_id=${id}/date=${DAY}/part-${range}.parquet`, old);
    const all = [...ids, late.event_id as string].sort();
    expect(await reportIds(id)).toEqual(all);

    await runHousekeeping(id);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-4.parquet`]);
    expect(await reportIds(id)).toEqual(all);
  });

  it("lists a partition past R2's first page (a day of minute flushes is 1,440 files)", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    // Pages of one object stand in for R2's pages of 1,000.
    const paged = withMethods(env.LAKE, { list: ((options?: R2ListOptions) => env.LAKE.list({ ...options, limit: 1 })) as R2Bucket["list"] });
    await compactPartition(paged, id, DAY);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("a report whose listing of a partition spans pages misses no rows when a compaction runs between the pages", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    let raced = false;
    // Pages of two stand in for R2's pages of 1,000. Page 1 holds 1-1 and 2-2; before page 2 the
    // compaction writes 1-3 (it sorts into page 1) and deletes 3-3, so that listing holds neither.
    const racing = withMethods(env.LAKE, {
      list: (async (options: R2ListOptions = {}) => {
        if (options.cursor !== undefined && !raced) {
          raced = true;
          await compactPartition(env.LAKE, id, DAY);
        }
        return env.LAKE.list({ ...options, limit: 2 });
      }) as R2Bucket["list"],
    });
    const csv = await new Response(await reportStream(racing, id, { from: Date.parse(RANGE.from), to: Date.parse(RANGE.to) }, "csv", "epoch_ms")).text();
    expect(raced).toBe(true);
    expect(parseCsv(csv).slice(1).map((r) => r[EVENT_COLUMNS.indexOf("event_id")]).sort()).toEqual(ids);
  });

  it("a report of a partition of several pages answers though a flush lands between every two listings", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const key = await ingestKey();
    let flushes = 0;
    // A hot client's shards flush about once a second between them: its day's listings seldom agree
    // exactly, which answered lake_busy, though a flush's new file changes nothing already listed.
    const flushing = withMethods(env.LAKE, {
      list: (async (options: R2ListOptions = {}) => {
        if (options.cursor === undefined) {
          await postEvents([detailEvent(id, -(100 + flushes++))], key);
          await flush(id);
        }
        return env.LAKE.list({ ...options, limit: 2 });
      }) as R2Bucket["list"],
    });
    const csv = await new Response(await reportStream(flushing, id, { from: Date.parse(RANGE.from), to: Date.parse(RANGE.to) }, "csv", "epoch_ms")).text();
    expect(flushes).toBe(2);
    const got = parseCsv(csv).slice(1).map((r) => r[EVENT_COLUMNS.indexOf("event_id")]);
    expect(got).toEqual(expect.arrayContaining(ids));
    expect(new Set(got).size).toBe(got.length);
  });

  it("a reader gives up with a retryable 503 lake_busy when a partition of several pages differs at every listing", async () => {
    const { id } = await createClient();
    await smallFiles(id);
    const added: string[] = [];
    // A compaction's file (covering files already listed) between every two listings: no two in a row agree.
    const churning = withMethods(env.LAKE, {
      list: (async (options: R2ListOptions = {}) => {
        if (options.cursor === undefined) {
          added.push(`lake/notifications/client_id=${id}/date=${DAY}/part-1-${100 + added.length}.parquet`);
          await env.LAKE.put(added.at(-1)!, "");
        }
        return env.LAKE.list({ ...options, limit: 2 });
      }) as R2Bucket["list"],
    });
    const rows = reportRows(churning, id, { from: Date.parse(RANGE.from), to: Date.parse(RANGE.to) });
    await expect(rows.next()).rejects.toMatchObject({ status: 503, code: "lake_busy" });
    // After its fourth listing (MAX_LISTINGS), not one more.
    expect(added).toHaveLength(4);
    // The bucket outlives the test: the housekeeping tests compact every client's day.
    await env.LAKE.delete(added);
  });

  it("the cron asks each client's shard 0 once for the closed days, and reads no lake file itself", async () => {
    const { id } = await createClient();
    await smallFiles(id);
    const sharded = await createClient({ shards: 2 });
    const lakeCalls: string[] = [];
    const methods = ["get", "head", "list", "put", "delete", "createMultipartUpload"] as const;
    const lake = withMethods(env.LAKE, Object.fromEntries(methods.map((m) => [m, (...args: unknown[]) => (lakeCalls.push(m), (env.LAKE[m] as (...a: unknown[]) => unknown)(...args))])));
    const { objects, asked } = askingObjects();
    await compactionJob({ ...env, LAKE: lake, CLIENT_COUNTER: objects }, HOUSEKEEPING_AT);
    expect(lakeCalls).toEqual([]);
    const all = (await db().select({ id: clients.id }).from(clients)).map((c) => c.id);
    expect(asked.map(([, clientId]) => clientId).sort()).toEqual(all.sort());
    for (const [objectId, clientId, days] of asked) {
      expect(objectId).toBe(env.CLIENT_COUNTER.idFromName(clientId).toString());
      expect(days).toEqual(closedDays(HOUSEKEEPING_AT));
    }
    expect(all).toEqual(expect.arrayContaining([id, sharded.id]));
    await compactionAlarm(id);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
  });

  it("an object compacts in its alarm the days asked of it, and only those", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const stub = counterOf(env, id);
    await stub.compactLake(id, ["2026-11-17"]);
    await compactionAlarm(id);
    expect(await keys(id)).toHaveLength(3);
    await stub.compactLake(id, [DAY]);
    expect(await askedOf(id)).not.toBeNull();
    await compactionAlarm(id);
    expect(await askedOf(id)).toBeNull();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("a sharded client is compacted once, by its shard 0, into one file per shard", async () => {
    const id = await twoFilesPerShard();
    const { objects, asked } = askingObjects();
    const done = vi.spyOn(console, "info");
    await compactionJob({ ...env, CLIENT_COUNTER: objects }, HOUSEKEEPING_AT);
    expect(asked.filter(([, clientId]) => clientId === id).map(([objectId]) => objectId)).toEqual([env.CLIENT_COUNTER.idFromName(id).toString()]);
    await compactionAlarm(id);
    expect(linesOf(done, "lake_compaction_done").filter((l) => l.client_id === id)).toEqual([expect.objectContaining({ files: 2, rows: 4, replaced: 4 })]);
    done.mockRestore();
    // Shard 0's file (seqs from 1) and shard 1's (from SEQ_BAND, 10¹²).
    expect((await keys(id)).map((k) => /part-(\d+)-/.exec(k)![1]!.length)).toEqual([1, 13]);
  });

  it("retries a compaction that failed, minutes later, and the files stay readable meanwhile", async () => {
    const { id } = await createClient();
    // Yesterday (by the real clock): a day inside the compaction window, so the object keeps retrying it.
    const yesterday = utcDate(Date.now() - DAY_MS);
    const range = { from: `${yesterday}T00:00:00Z`, to: `${utcDate(Date.now())}T00:00:00Z`, format: "parquet" };
    const ids = await smallFiles(id, Date.parse(`${yesterday}T12:00:00Z`));
    const stub = counterOf(env, id);
    await setBucket(id, failingBucket);
    const logged = vi.spyOn(console, "error");
    const asked = Date.now();
    await stub.compactLake(id, [yesterday]);
    await compactionAlarm(id);
    expect(linesOf(logged, "lake_job_failed").filter((l) => l.client_id === id)).toEqual([expect.objectContaining({ days: [yesterday], retry_in_ms: 300_000 })]);
    logged.mockRestore();
    const retry = (await askedOf(id))!;
    expect(retry).toMatchObject({ days: [yesterday], failures: 1 });
    expect(retry.retry_at).toBeGreaterThanOrEqual(asked + 300_000);
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).toBeLessThanOrEqual(retry.retry_at);
    expect(await keys(id, yesterday)).toHaveLength(3);
    expect(await reportIds(id, range)).toEqual(ids);
    // An alarm before the retry is due (the next flush's) leaves it.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await askedOf(id)).toEqual(retry);

    await setBucket(id, env.LAKE);
    expect(await withClockAhead(300_000, () => runDurableObjectAlarm(stub))).toBe(true);
    expect(await askedOf(id)).toBeNull();
    expect(await keys(id, yesterday)).toEqual([`lake/notifications/client_id=${id}/date=${yesterday}/part-1-3.parquet`]);
    expect(await reportIds(id, range)).toEqual(ids);
  });

  it("an idle object (no flush due) still wakes for its retry, and again after an alarm that came too early", async () => {
    // No events: nothing but the compaction arms this object's alarm, so its retry must arm one itself.
    const { id } = await createClient();
    const yesterday = utcDate(Date.now() - DAY_MS);
    for (const s of [1, 2]) await env.LAKE.put(`lake/notifications/client_id=${id}/date=${yesterday}/part-${s}-${s}.parquet`, "not a Parquet file");
    const stub = counterOf(env, id);
    const logged = vi.spyOn(console, "error");
    await stub.compactLake(id, [yesterday]);
    await compactionAlarm(id);
    logged.mockRestore();
    const retry = (await askedOf(id))!;
    expect(retry).toMatchObject({ days: [yesterday], failures: 1 });
    const alarmOf = () => runInDurableObject(stub, (_i, state) => state.storage.getAlarm());
    expect(await alarmOf()).not.toBeNull();
    expect(await alarmOf()).toBeLessThanOrEqual(retry.retry_at);
    // The alarm run before the retry is due (as a flush's would be) must leave one armed for the retry.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await askedOf(id)).toEqual(retry);
    expect(await alarmOf()).toBe(retry.retry_at);
  });

  it("a day asked while the object compacts is compacted after, not lost", async () => {
    const { id, yesterday, stub } = await smallFilesOnTwoDays();
    const { release, listed } = await holdListings(id);
    await stub.compactLake(id, [yesterday]);
    const first = runDurableObjectAlarm(stub).catch(() => false);
    await vi.waitFor(() => expect(listed()).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
    await stub.compactLake(id, [DAY]);
    release();
    await first;
    await compactionAlarm(id);
    await vi.waitFor(async () => expect(await askedOf(id)).toBeNull(), { timeout: 10_000, interval: 50 });
    expect(await keys(id, yesterday)).toHaveLength(1);
    expect(await keys(id)).toHaveLength(1);
  });

  it("an alarm ends only once its compaction has, so that the runtime keeps the object for it and retries the alarm if it throws", async () => {
    const { id } = await createClient();
    await smallFiles(id);
    const stub = counterOf(env, id);
    const { release, listed } = await holdListings(id);
    await stub.compactLake(id, [DAY]);
    let ended = false;
    const alarm = runInDurableObject(stub, (instance) => instance.alarm()).then(() => (ended = true));
    await vi.waitFor(() => expect(listed()).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
    expect(ended).toBe(false);
    release();
    await alarm;
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
  });

  it("two alarm runs at once compact a day once", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const stub = counterOf(env, id);
    const { release } = await holdListings(id);
    const done = vi.spyOn(console, "info");
    await stub.compactLake(id, [DAY]);
    const runs = runInDurableObject(stub, (instance) => Promise.all([instance.alarm(), instance.alarm()]));
    setTimeout(release, 200);
    await runs;
    await compactionAlarm(id);
    expect(linesOf(done, "lake_compaction_done").filter((l) => l.client_id === id)).toEqual([expect.objectContaining({ files: 1, replaced: 3 })]);
    done.mockRestore();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("a new ask keeps the days waiting for a retry and runs them at once", async () => {
    const { id, yesterday, stub } = await smallFilesOnTwoDays();
    const logged = vi.spyOn(console, "error");
    await failedOnce(id, yesterday);
    logged.mockRestore();
    await setBucket(id, env.LAKE);
    // The next night's ask, before the retry is due.
    await stub.compactLake(id, [DAY]);
    expect((await askedOf(id))!).toMatchObject({ days: [DAY, yesterday].sort(), retry_at: 0 });
    await compactionAlarm(id);
    expect(await askedOf(id)).toBeNull();
    expect(await keys(id, yesterday)).toHaveLength(1);
    expect(await keys(id)).toHaveLength(1);
  });

  it("a new night's ask starts the backoff afresh: what fails after it is retried 5 minutes later", async () => {
    const { id, yesterday, stub } = await smallFilesOnTwoDays();
    const logged = vi.spyOn(console, "error");
    await failedOnce(id, yesterday);
    await stub.compactLake(id, [DAY]);
    await compactionAlarm(id);
    const retried = linesOf(logged, "lake_job_failed").filter((l) => l.client_id === id && l.retry_in_ms !== null);
    logged.mockRestore();
    await setBucket(id, env.LAKE);
    expect(retried.map((l) => l.retry_in_ms)).toEqual([300_000, 300_000]);
    expect((await askedOf(id))!).toMatchObject({ days: [yesterday], failures: 1 });
  });

  it("gives up on a day that keeps failing once it has left the compaction window, keeping its files", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const broken = await createClient();
    const brokenKeys = [1, 2].map((s) => `lake/notifications/client_id=${broken.id}/date=${DAY}/part-${s}-${s}.parquet`);
    for (const key of brokenKeys) await env.LAKE.put(key, "not a Parquet file");
    const logged = vi.spyOn(console, "error");
    // The cron asks as of DAY's housekeeping; the objects run later, by the real clock, when DAY is out of the window.
    await runCron("30 3 * * *", HOUSEKEEPING_AT);
    await compactionAlarm(broken.id);
    await compactionAlarm(id);
    // The failure's line names the client to look at (docs/operations.md).
    expect(linesOf(logged, "lake_job_failed").filter((l) => l.client_id === broken.id)).toEqual([expect.objectContaining({ days: [DAY], retry_in_ms: null })]);
    logged.mockRestore();
    expect(await askedOf(broken.id)).toBeNull();
    expect(await keys(broken.id)).toEqual(brokenKeys);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("logs the days it retries apart from those it gives up", async () => {
    const { id } = await createClient();
    const yesterday = utcDate(Date.now() - DAY_MS);
    // DAY is out of the window by the real clock, yesterday inside it; both fail every try.
    for (const day of [DAY, yesterday]) for (const s of [1, 2]) await env.LAKE.put(`lake/notifications/client_id=${id}/date=${day}/part-${s}-${s}.parquet`, "not a Parquet file");
    const logged = vi.spyOn(console, "error");
    await counterOf(env, id).compactLake(id, [DAY, yesterday]);
    await compactionAlarm(id);
    const lines = linesOf(logged, "lake_job_failed").filter((l) => l.client_id === id);
    logged.mockRestore();
    expect(lines).toEqual(
      expect.arrayContaining([expect.objectContaining({ days: [yesterday], retry_in_ms: 300_000 }), expect.objectContaining({ days: [DAY], retry_in_ms: null })]),
    );
    expect(lines).toHaveLength(2);
    expect((await askedOf(id))!).toMatchObject({ days: [yesterday], failures: 1 });
  });

  it("fails the job when an object cannot be asked, after asking the others", async () => {
    const { id } = await createClient();
    const unreachable = await createClient();
    const { objects, asked } = askingObjects(unreachable.id);
    const logged = vi.spyOn(console, "error");
    await expect(compactionJob({ ...env, CLIENT_COUNTER: objects }, HOUSEKEEPING_AT)).rejects.toThrow("compaction could not be asked of 1 clients");
    expect(linesOf(logged, "lake_job_failed").map((l) => l.client_id)).toEqual([unreachable.id]);
    logged.mockRestore();
    expect(asked.map(([, clientId]) => clientId)).toContain(id);
  });

  it("leaves today's partition alone", async () => {
    const { id } = await createClient();
    await smallFiles(id);
    await runHousekeeping(id, Date.parse("2026-11-18T03:30:00Z"));
    expect(await keys(id)).toHaveLength(3);
  });
});

describe("compaction on demand (POST /v1/admin/lake/compact)", () => {
  it("merges a closed day's small files into one now, rows unchanged, and audits it", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const done = vi.spyOn(console, "info");
    const res = await compactNow(id, DAY);
    expect(res.status).toBe(200);
    const merged = `lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`;
    expect(await res.json()).toEqual({ files: [merged], replaced: 3, rows: 12 });
    expect(linesOf(done, "lake_compaction_done").filter((l) => l.client_id === id)).toEqual([expect.objectContaining({ files: 1, rows: 12, replaced: 3, failed_days: 0 })]);
    done.mockRestore();
    expect(await keys(id)).toEqual([merged]);
    expect(await reportIds(id)).toEqual(ids);
    expect(await compactAudits(id)).toEqual([{ date: DAY, files: 1, replaced: 3, rows: 12 }]);
  });

  it("refuses today's partition and later days with 400 day_not_closed, leaving the files", async () => {
    const { id } = await createClient();
    const today = utcDate(Date.now());
    // The files' events go back up to 33 s from `end`: in the first seconds of a UTC day, they start
    // a little ahead, so that they fall on today rather than yesterday.
    await smallFiles(id, Math.max(Date.now(), Date.parse(`${today}T00:00:40Z`)));
    for (const date of [today, utcDate(Date.now() + DAY_MS)]) {
      const res = await compactNow(id, date);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("day_not_closed");
    }
    expect(await keys(id, today)).toHaveLength(3);
  });

  it("answers 404 for an unknown client and 400 for a date that is not one", async () => {
    const res = await compactNow("no-such-client", DAY);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("client_not_found");
    const { id } = await createClient();
    expect((await compactNow(id, "2026-11-31")).status).toBe(400);
  });

  it("answers 503 compaction_failed when R2 fails, and the files stay readable", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const { res } = await compactThrough(id, failingBucket);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("compaction_failed");
    expect(await keys(id)).toHaveLength(3);
    expect(await reportIds(id)).toEqual(ids);
    expect(await compactAudits(id)).toEqual([{ date: DAY, failed: "compaction_failed" }]);
  });

  it("names in its 503's log line the file it could not read", async () => {
    const { id } = await createClient();
    await smallFiles(id);
    const [, unreadable] = await keys(id);
    const { res, failed } = await compactThrough(
      id,
      withMethods(env.LAKE, { get: (key: string, o?: R2GetOptions) => (key === unreadable ? Promise.reject(new Error("R2 is down")) : env.LAKE.get(key, o)) }),
    );
    expect(res.status).toBe(503);
    expect(JSON.stringify(failed)).toContain(`reading ${unreadable}: R2 is down`);
    expect(await keys(id)).toHaveLength(3);
  });

  it("answers 503, not 409, when R2 fails reading a larger file's footer: the file is sound, and an operator told to remove it would lose its rows", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const [, large] = await keys(id);
    // Listed past the 8 MiB read whole, the file is read by ranges, and those fail.
    const listed = async (o?: R2ListOptions): Promise<R2Objects> => {
      const page = await env.LAKE.list(o);
      const objects = page.objects.map((obj) => ({ key: obj.key, size: obj.key === large ? 9 << 20 : obj.size }) as R2Object);
      return page.truncated ? { objects, delimitedPrefixes: [], truncated: true, cursor: page.cursor } : { objects, delimitedPrefixes: [], truncated: false };
    };
    const get = (key: string, o?: R2GetOptions) => (key === large && o?.range ? Promise.reject(new Error("R2 is down")) : env.LAKE.get(key, o));
    const { res } = await compactThrough(id, withMethods(env.LAKE, { list: listed, get } as Partial<R2Bucket>));
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("compaction_failed");
    expect(await keys(id)).toHaveLength(3);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("compacts a sharded client through its shard 0, into one file per shard", async () => {
    const id = await twoFilesPerShard();
    const { objects, asked } = askingObjects();
    const res = await compactNow(id, DAY, { CLIENT_COUNTER: objects });
    expect(asked).toEqual([[env.CLIENT_COUNTER.idFromName(id).toString(), id, [DAY]]]);
    expect(await res.json()).toMatchObject({ replaced: 4, rows: 4 });
    // Shard 0's file (seqs from 1) and shard 1's (from SEQ_BAND, 10¹²).
    expect((await keys(id)).map((k) => /part-(\d+)-/.exec(k)![1]!.length)).toEqual([1, 13]);
  });

  it("waits for the object's own compaction of the day instead of running beside it", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const stub = counterOf(env, id);
    const { release, listed } = await holdListings(id);
    await stub.compactLake(id, [DAY]);
    const alarm = runInDurableObject(stub, (instance) => instance.alarm());
    await vi.waitFor(() => expect(listed()).toBe(1), { timeout: 10_000, interval: 20 });
    const now = compactNow(id, DAY);
    // Run beside the alarm's, the endpoint's compaction would list the same three files meanwhile.
    await new Promise((r) => setTimeout(r, 200));
    expect(listed()).toBe(1);
    release();
    await alarm;
    // The alarm's run compacted the day; the endpoint's, after it, found one file.
    expect(await (await now).json()).toEqual({ files: [], replaced: 0, rows: 0 });
    await setBucket(id, env.LAKE);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("compacts a day the nightly retries gave up on once the file that is not Parquet is removed, naming that file until then", async () => {
    const { id } = await createClient();
    const ids = await smallFiles(id);
    const bad = `lake/notifications/client_id=${id}/date=${DAY}/part-900-900.parquet`;
    await env.LAKE.put(bad, "not a Parquet file");
    const logged = vi.spyOn(console, "error");
    // Asked as of DAY's housekeeping, run by the real clock: DAY is out of the window, so it is given up.
    await counterOf(env, id).compactLake(id, [DAY]);
    await compactionAlarm(id);
    expect(linesOf(logged, "lake_job_failed").filter((l) => l.client_id === id)).toEqual([expect.objectContaining({ days: [DAY], retry_in_ms: null })]);
    logged.mockRestore();
    expect(await askedOf(id)).toBeNull();
    expect(await keys(id)).toHaveLength(4);

    const refused = await compactNow(id, DAY);
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: unknown }).error).toMatchObject({ code: "not_parquet", details: { key: bad } });
    expect(await keys(id)).toHaveLength(4);

    await env.LAKE.delete(bad);
    const res = await compactNow(id, DAY);
    expect(await res.json()).toEqual({ files: [`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`], replaced: 3, rows: 12 });
    expect(await keys(id)).toHaveLength(1);
    expect(await reportIds(id)).toEqual(ids);
    expect(await compactAudits(id)).toEqual([{ date: DAY, files: 1, replaced: 3, rows: 12 }, { date: DAY, failed: "not_parquet" }]);
  });

  it("a night's ask that comes while the day is compacted now stands: a file flushed meanwhile is compacted by the alarm", async () => {
    const { id } = await createClient();
    const yesterday = utcDate(Date.now() - DAY_MS);
    const noon = Date.parse(`${yesterday}T12:00:00Z`);
    await smallFiles(id, noon);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let read = 0;
    // The partition is listed; its files are read only once the late file and the ask are in.
    await setBucket(id, withMethods(env.LAKE, { get: async (key: string, o?: R2GetOptions) => (read++, await gate, env.LAKE.get(key, o)) }));
    const now = compactNow(id, yesterday);
    await vi.waitFor(() => expect(read).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
    await postEvents([detailEvent(id, -50, { occurred_at: noon - 50_000 })], await ingestKey());
    await flush(id);
    await counterOf(env, id).compactLake(id, [yesterday]);
    release();
    expect(await (await now).json()).toMatchObject({ replaced: 3 });
    await setBucket(id, env.LAKE);
    await compactionAlarm(id);
    expect(await keys(id, yesterday)).toHaveLength(1);
  });

  it("a day waiting for a nightly retry no longer waits once compacted now; a failed try leaves what waits as it was", async () => {
    const { id } = await createClient();
    const yesterday = utcDate(Date.now() - DAY_MS);
    const dayBefore = utcDate(Date.now() - 2 * DAY_MS);
    await smallFiles(id, Date.parse(`${yesterday}T12:00:00Z`));
    await smallFiles(id, Date.parse(`${dayBefore}T12:00:00Z`));
    await setBucket(id, failingBucket);
    const logged = vi.spyOn(console, "error");
    await counterOf(env, id).compactLake(id, [dayBefore, yesterday]);
    await compactionAlarm(id);
    const waiting = (await askedOf(id))!;
    expect(waiting).toMatchObject({ days: [dayBefore, yesterday], failures: 1 });

    expect((await compactNow(id, yesterday)).status).toBe(503);
    logged.mockRestore();
    expect(await askedOf(id)).toEqual(waiting);

    await setBucket(id, env.LAKE);
    expect(await (await compactNow(id, yesterday)).json()).toMatchObject({ replaced: 3, rows: 12 });
    expect(await askedOf(id)).toEqual({ ...waiting, days: [dayBefore] });
    expect(await keys(id, dayBefore)).toHaveLength(3);
    expect(await (await compactNow(id, dayBefore)).json()).toMatchObject({ replaced: 3, rows: 12 });
    expect(await askedOf(id)).toBeNull();
  });
});
