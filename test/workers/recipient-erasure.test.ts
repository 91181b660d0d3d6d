import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parquetMetadata } from "hyparquet";
import { describe, expect, it, vi } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import type { Erasure } from "../../schema/api.ts";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { compactPartition } from "../../workers/lake/compaction.ts";
import { erasePartition } from "../../workers/lake/erasure.ts";
import { reportStream } from "../../workers/lake/report.ts";
import { mergeErased, parseSources, sourceRange } from "../../workers/lake/sources.ts";
import { askErasure, erasureState, getErasure, settleErasure } from "./erasure-fixtures.ts";
import { admin, authed, call, createClient, gatedBucket, gatedPuts, ingestKey, messageIn, postEvents, putFailingOnce, signIn, withClockAhead, withMethods } from "./helpers.ts";
import { detailEvent, flush, parseCsv, partitionKeys, readParquet, reportEventIds, setBucket } from "./lake-fixtures.ts";

/** A recipient no other test sends to (Rio de Janeiro mobiles; lake-fixtures' are São Paulo's). */
function recipientNumber(): string {
  return `55219${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`;
}

/** A detail event of `clientId` at noon of `day` plus `s` seconds, to `recipient` when given. */
function eventOn(clientId: string, day: string, s: number, recipient?: string): Record<string, unknown> {
  return detailEvent(clientId, s, { occurred_at: Date.parse(`${day}T12:00:00Z`) + s * 1_000, ...(recipient ? { recipient } : {}) });
}

const idsOf = (events: Record<string, unknown>[]) => events.map((e) => e.event_id as string).sort();

/** `files` small files of the client's lake, each the events `eventsOf(f)` flushed on their own; returns every event sent. */
async function smallFiles(clientId: string, files: number, eventsOf: (f: number) => Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
  const key = await ingestKey();
  const sent: Record<string, unknown>[] = [];
  for (let f = 0; f < files; f++) {
    const events = eventsOf(f);
    expect((await postEvents(events, key)).status).toBe(200);
    sent.push(...events);
    await flush(clientId);
  }
  return sent;
}

/** Every key of the client's lake. */
async function lakeKeys(clientId: string): Promise<string[]> {
  return (await env.LAKE.list({ prefix: `lake/notifications/client_id=${clientId}/` })).objects.map((o) => o.key).sort();
}

async function rowsOf(key: string): Promise<Record<string, unknown>[]> {
  return (await readParquet(await (await env.LAKE.get(key))!.arrayBuffer())).rows;
}

/** The rows of the client's lake sent to `recipient`, in every file, superseded ones included. */
async function rowsTo(clientId: string, recipient: string): Promise<number> {
  let n = 0;
  for (const key of await lakeKeys(clientId)) n += (await rowsOf(key)).filter((r) => r.recipient === recipient).length;
  return n;
}

/** Asks the erasure (202) and runs it to its end. */
async function erase(clientId: string, recipient: string): Promise<Erasure> {
  const res = await askErasure(clientId, recipient);
  expect(res.status).toBe(202);
  return settleErasure(clientId, ((await res.json()) as Erasure).id);
}

describe("a recipient's erasure", () => {
  it("removes the recipient's rows from every day, flushed or not, and leaves every other row readable", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const R = recipientNumber();
    const sent: Record<string, unknown>[] = [];
    const post = async (events: Record<string, unknown>[]) => {
      expect((await postEvents(events, key)).status).toBe(200);
      sent.push(...events);
    };
    // 2026-11-18: three small files, the recipient in the first and the last.
    for (let f = 0; f < 3; f++) {
      await post([eventOn(id, "2026-11-18", f * 10 + 1), eventOn(id, "2026-11-18", f * 10 + 2), ...(f === 1 ? [] : [eventOn(id, "2026-11-18", f * 10 + 3, R)])]);
      await flush(id);
    }
    // 2026-11-16: one file with the recipient; 2026-11-15: one without.
    await post([eventOn(id, "2026-11-16", 1), eventOn(id, "2026-11-16", 2, R), eventOn(id, "2026-11-15", 1), eventOn(id, "2026-11-15", 2)]);
    await flush(id);
    const untouched = await env.LAKE.head((await partitionKeys(id, "2026-11-15"))[0]!);
    // Still in the outbox when the erasure is asked.
    await post([eventOn(id, "2026-11-18", 40, R), eventOn(id, "2026-11-18", 41)]);
    const range = { from: "2026-11-15T00:00:00Z", to: "2026-11-19T00:00:00Z" };
    const others = idsOf(sent.filter((e) => e.recipient !== R));

    const res = await askErasure(id, `+${R}`);
    expect(res.status).toBe(202);
    const asked = (await res.json()) as Erasure;
    expect(asked).toMatchObject({ client_id: id, status: "pending", days_left: null, files_rewritten: 0, rows_removed: 0, failures: 0, done_at: null });
    expect(JSON.stringify(asked)).not.toContain(R);

    const done = await settleErasure(id, asked.id);
    expect(done).toMatchObject({ status: "done", days_left: 0, files_rewritten: 2, rows_removed: 4, failures: 0 });
    expect(done.done_at).toBeGreaterThanOrEqual(asked.asked_at);
    expect(await rowsTo(id, R)).toBe(0);
    expect(await reportEventIds(id, range)).toEqual(others);
    // A day with many files is one file per shard; a day with one is rewritten under the same range.
    const prefix = `lake/notifications/client_id=${id}`;
    expect(await partitionKeys(id, "2026-11-18")).toEqual([`${prefix}/date=2026-11-18/part-1-5.parquet`]);
    expect(await partitionKeys(id, "2026-11-16")).toEqual([`${prefix}/date=2026-11-16/part-04-4.parquet`]);
    // A day without the recipient is read, not rewritten.
    expect(await partitionKeys(id, "2026-11-15")).toEqual([untouched!.key]);
    expect((await env.LAKE.head(untouched!.key))!.etag).toBe(untouched!.etag);
    // Done, the object keeps no trace of the number; the audit log never had it.
    const meta = await runInDurableObject(counterOf(env, id), (_i, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM meta").toArray());
    expect(JSON.stringify(meta)).not.toContain(R);
    const audit = await call(`/v1/admin/audit?action=recipient.erase&target=${id}`, authed(await admin()));
    const entries = ((await audit.json()) as { entries: { details: unknown }[] }).entries;
    expect(entries.map((e) => e.details)).toEqual([{ erasure_id: asked.id }]);
    expect(JSON.stringify(entries)).not.toContain(R.slice(2));
  });

  it("keeps each compacted file's source map true to the rows left, through a compaction and two erasures", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const [R1, R2] = [recipientNumber(), recipientNumber()];
    const day = "2026-11-18";
    const original = new Map<string, string[]>();
    const note = async () => {
      for (const k of await partitionKeys(id, day)) if (!original.has(k.replace(/.*\//, ""))) original.set(k.replace(/.*\//, ""), (await rowsOf(k)).map((r) => `${String(r.event_id)} ${String(r.recipient)}`));
    };
    for (let f = 0; f < 3; f++) {
      await postEvents([eventOn(id, day, f * 10 + 1, f === 1 ? R1 : undefined), eventOn(id, day, f * 10 + 2, R2), eventOn(id, day, f * 10 + 3)], key);
      await flush(id);
    }
    await note();
    await compactPartition(env.LAKE, id, day);
    await note();
    await postEvents([eventOn(id, day, 40, R1), eventOn(id, day, 41)], key);
    await flush(id);
    await note();

    await erase(id, R1);
    await note();
    await erase(id, R2);
    const [file] = await partitionKeys(id, day);
    expect(file).toMatch(/\/part-01-4\.parquet$/);
    const rows = (await rowsOf(file!)).map((r) => `${String(r.event_id)} ${String(r.recipient)}`);
    const kept = (ids: string[]) => ids.filter((r) => !r.endsWith(R1) && !r.endsWith(R2));
    const sources = parseSources(parquetMetadata(await (await env.LAKE.get(file!))!.arrayBuffer()).key_value_metadata);
    // Every part the file replaced, the small ones and the first compaction's, has its slice: its rows
    // but the erased ones, in its order; its erased rows, numbered as the part held them, are the recipients'.
    expect(sources.map(([f, l]) => `part-${f}-${l}.parquet`).sort()).toEqual([...original.keys()].sort());
    for (const [f, l, s, e, erased] of sources) {
      const part = original.get(`part-${f}-${l}.parquet`)!;
      expect(rows.slice(s, e)).toEqual(kept(part));
      expect((erased ?? []).map((i) => part[i])).toEqual(part.filter((r) => !kept([r]).length));
    }
  });

  it("a report whose listed files an erasure replaces before it reads them reads every other row once", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    const day = "2026-11-18";
    const sent = await smallFiles(id, 3, (f) => [eventOn(id, day, f * 10 + 1), eventOn(id, day, f * 10 + 2, R), eventOn(id, day, f * 10 + 3)]);
    let raced = false;
    // The report lists 1-1, 2-2 and 3-3; as it opens 2-2 the erasure writes 1-3 without the
    // recipient and deletes the three.
    const racing = withMethods(env.LAKE, {
      get: (async (k: string, options?: R2GetOptions) => {
        if (!raced && k.endsWith("/part-2-2.parquet")) {
          raced = true;
          await erasePartition(env.LAKE, id, day, R, () => undefined);
        }
        return env.LAKE.get(k, options);
      }) as R2Bucket["get"],
    });
    const csv = await new Response(await reportStream(racing, id, { from: Date.parse(`${day}T00:00:00Z`), to: Date.parse("2026-11-19T00:00:00Z") }, "csv", "epoch_ms")).text();
    expect(raced).toBe(true);
    const rows = parseCsv(csv).slice(1);
    const ids = rows.map((r) => r[EVENT_COLUMNS.indexOf("event_id")]!);
    // Each row once; the recipient's rows of files read before the erasure may be in it, none after.
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.filter((i) => !sent.some((e) => e.event_id === i && e.recipient === R)).sort()).toEqual(idsOf(sent.filter((e) => e.recipient !== R)));
    expect(rows.filter((r) => r[EVENT_COLUMNS.indexOf("recipient")] === R).length).toBeLessThan(3);
    expect(await partitionKeys(id, day)).toEqual([`lake/notifications/client_id=${id}/date=${day}/part-1-3.parquet`]);
  });

  it("resumes a reader that had read part of a file where the rows it had not read lie in the rewrite", () => {
    // Rows 1 and 5 of a part erased; a reader had read its first 3 rows (a row group): it goes on at
    // row 2 of the part's slice, which is the part's row 3.
    const kv = [{ key: "zapmeter.sources", value: JSON.stringify([[7, 9, 10, 14, [1, 5]]]) }];
    expect(sourceRange(kv, { first: 7, last: 9 }, 3)).toEqual({ start: 10, end: 14, given: 2 });
    expect(sourceRange(kv, { first: 7, last: 9 }, 0)).toEqual({ start: 10, end: 14, given: 0 });
    // A part erased twice names its own rows: 1 and 3 first, then what were rows 1 and 2 of the rest (2 and 4).
    expect(mergeErased([1, 3], [1, 2])).toEqual([1, 2, 3, 4]);
    expect(mergeErased([], [0, 2])).toEqual([0, 2]);
  });

  it("keeps a rewritten file over the files of its range left beside it, through a second erasure and a compaction", async () => {
    const { id } = await createClient();
    const [R1, R2] = [recipientNumber(), recipientNumber()];
    const day = "2026-11-18";
    const dir = `lake/notifications/client_id=${id}/date=${day}`;
    const range = { from: `${day}T00:00:00Z`, to: "2026-11-19T00:00:00Z" };
    const sent = await smallFiles(id, 1, () => [eventOn(id, day, 1), eventOn(id, day, 2, R1), eventOn(id, day, 3, R2)]);
    const original = await (await env.LAKE.get(`${dir}/part-1-1.parquet`))!.arrayBuffer();
    await erase(id, R1);
    const once = await (await env.LAKE.get(`${dir}/part-01-1.parquet`))!.arrayBuffer();
    await erase(id, R2);
    expect(await partitionKeys(id, day)).toEqual([`${dir}/part-001-1.parquet`]);
    // The files the two rewrites replaced, back as a put landing late (or a delete that failed) leaves them.
    await env.LAKE.put(`${dir}/part-1-1.parquet`, original);
    await env.LAKE.put(`${dir}/part-01-1.parquet`, once);
    const others = idsOf(sent.filter((e) => e.recipient !== R1 && e.recipient !== R2));
    expect(await reportEventIds(id, range)).toEqual(others);
    // A compaction of the day with a later file writes its range from the last rewrite, and deletes the rest.
    sent.push(...(await smallFiles(id, 1, () => [eventOn(id, day, 4)])));
    await compactPartition(env.LAKE, id, day);
    expect(await partitionKeys(id, day)).toEqual([`${dir}/part-1-2.parquet`]);
    expect((await rowsTo(id, R1)) + (await rowsTo(id, R2))).toBe(0);
    expect(await reportEventIds(id, range)).toEqual(idsOf(sent.filter((e) => e.recipient !== R1 && e.recipient !== R2)));
  });

  it("rewrites a sharded client's partition one file per shard, the recipient gone from each", async () => {
    const { id } = await createClient({ shards: 2 });
    const key = await ingestKey();
    const R = recipientNumber();
    const day = "2026-11-18";
    const sent: Record<string, unknown>[] = [];
    for (let round = 0; round < 2; round++) {
      const events = [0, 1].flatMap((shard) => [R, undefined].map((to, k) => ({ ...eventOn(id, day, round * 10 + shard * 2 + k, to), message_id: messageIn(shard, 2) })));
      const withIds = events.map((e) => ({ ...e, event_id: `${e.message_id}:${String((e as Record<string, unknown>).status)}` }));
      expect((await postEvents(withIds, key)).status).toBe(200);
      sent.push(...withIds);
      await flush(id);
    }
    expect(await partitionKeys(id, day)).toHaveLength(4);

    const done = await erase(id, R);
    expect(done).toMatchObject({ files_rewritten: 2, rows_removed: 4 });
    const files = await partitionKeys(id, day);
    expect(files.map((k) => k.replace(/.*\//, ""))).toEqual(["part-1-2.parquet", "part-1000000000001-1000000000002.parquet"]);
    expect(await rowsTo(id, R)).toBe(0);
    expect(await reportEventIds(id, { from: `${day}T00:00:00Z`, to: "2026-11-19T00:00:00Z" })).toEqual(idsOf(sent.filter((e) => e.recipient !== R)));
  });

  it("goes on after a failed R2 call and after an eviction, from the day it had reached, a bounded number of days a run", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    // 17 days, one file each: more than one run's days.
    const days = Array.from({ length: 17 }, (_, d) => `2026-10-${String(d + 1).padStart(2, "0")}`);
    const events = days.flatMap((day) => [eventOn(id, day, 1), eventOn(id, day, 2, R)]);
    expect((await postEvents(events, await ingestKey())).status).toBe(200);
    await flush(id);
    // The last day's partition cannot be listed.
    const last = `date=${days.at(-1)!}/`;
    await setBucket(
      id,
      withMethods(env.LAKE, {
        list: ((o?: R2ListOptions) => (o?.prefix?.endsWith(last) ? Promise.reject(new Error("R2 is down")) : env.LAKE.list(o))) as R2Bucket["list"],
      }),
    );
    // The days left as each run of the job begins.
    const runs: (number | null)[] = [];
    await runInDurableObject(counterOf(env, id), (instance) => {
      const erasure = (instance as unknown as { erasure: { goOn(e: Erasure): Promise<void> } }).erasure;
      const goOn = erasure.goOn.bind(erasure);
      erasure.goOn = (e) => {
        runs.push(e.days_left);
        return goOn(e);
      };
    });
    const asked = (await (await askErasure(id, R)).json()) as Erasure;
    const failed = await settleErasure(id, asked.id, { failures: 0 });
    expect(failed).toMatchObject({ status: "pending", days_left: 1, files_rewritten: 16, rows_removed: 16, failures: 1 });
    // 16 days in the first run, the last one in the next.
    expect(runs).toEqual([null, 1]);
    expect(await rowsTo(id, R)).toBe(1);

    // The object goes (and with it the failing bucket); its successor reads the erasure back from storage.
    await evictDurableObject(counterOf(env, id));
    // Not before its retry is due.
    await runDurableObjectAlarm(counterOf(env, id));
    expect(await erasureState(id, asked.id)).toMatchObject({ status: "pending", days_left: 1 });
    const done = await withClockAhead(61_000, () => settleErasure(id, asked.id));
    expect(done).toMatchObject({ status: "done", days_left: 0, files_rewritten: 17, rows_removed: 17, failures: 0 });
    expect(await rowsTo(id, R)).toBe(0);
    expect(await reportEventIds(id, { from: "2026-10-01T00:00:00Z", to: "2026-10-18T00:00:00Z" })).toEqual(idsOf(events.filter((e) => e.recipient !== R)));
  });

  it("keeps a day's files as they were when the rewrite's put fails, and erases it on the retry", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    const day = "2026-11-18";
    const sent = await smallFiles(id, 2, (f) => [eventOn(id, day, f * 10 + 1), eventOn(id, day, f * 10 + 2, R)]);
    const before = await partitionKeys(id, day);
    const range = { from: `${day}T00:00:00Z`, to: "2026-11-19T00:00:00Z" };
    await setBucket(id, putFailingOnce());
    const asked = (await (await askErasure(id, R)).json()) as Erasure;
    expect(await settleErasure(id, asked.id, { failures: 0 })).toMatchObject({ status: "pending", days_left: 1, rows_removed: 0, failures: 1 });
    expect(await partitionKeys(id, day)).toEqual(before);
    expect(await reportEventIds(id, range)).toEqual(idsOf(sent));

    expect(await withClockAhead(61_000, () => settleErasure(id, asked.id))).toMatchObject({ status: "done", files_rewritten: 1, rows_removed: 2 });
    expect(await partitionKeys(id, day)).toEqual([`lake/notifications/client_id=${id}/date=${day}/part-1-2.parquet`]);
    expect(await reportEventIds(id, range)).toEqual(idsOf(sent.filter((e) => e.recipient !== R)));
  });

  it("counts the rows of a rewrite whose deletes failed once, when its retry finds them gone", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    const day = "2026-11-18";
    const sent = await smallFiles(id, 2, (f) => [eventOn(id, day, f * 10 + 1), eventOn(id, day, f * 10 + 2, R)]);
    let failed = false;
    await setBucket(
      id,
      withMethods(env.LAKE, {
        delete: ((keys: string | string[]) => {
          if (failed) return env.LAKE.delete(keys);
          failed = true;
          return Promise.reject(new Error("R2 is down"));
        }) as R2Bucket["delete"],
      }),
    );
    const asked = (await (await askErasure(id, R)).json()) as Erasure;
    expect(await settleErasure(id, asked.id, { failures: 0 })).toMatchObject({ status: "pending", days_left: 1, failures: 1 });
    // The retry deletes the files the rewrite covers and rewrites nothing: the rows went in the failed try.
    expect(await withClockAhead(61_000, () => settleErasure(id, asked.id))).toMatchObject({ status: "done", files_rewritten: 1, rows_removed: 2 });
    expect(await rowsTo(id, R)).toBe(0);
    expect(await reportEventIds(id, { from: `${day}T00:00:00Z`, to: "2026-11-19T00:00:00Z" })).toEqual(idsOf(sent.filter((e) => e.recipient !== R)));
  });

  it("is one job however often it is asked while pending; asked again once done, it is a new one", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    await postEvents([eventOn(id, "2026-11-18", 1, R), eventOn(id, "2026-11-18", 2)], await ingestKey());
    const first = (await (await askErasure(id, R)).json()) as Erasure;
    const again = await askErasure(id, `+${R}`);
    expect(again.status).toBe(202);
    expect(((await again.json()) as Erasure).id).toBe(first.id);
    const other = (await (await askErasure(id, recipientNumber())).json()) as Erasure;
    expect(other.id).not.toBe(first.id);

    expect(await settleErasure(id, first.id)).toMatchObject({ status: "done", rows_removed: 1 });
    await settleErasure(id, other.id);
    const later = (await (await askErasure(id, R)).json()) as Erasure;
    expect(later.id).not.toBe(first.id);
    expect(await settleErasure(id, later.id)).toMatchObject({ status: "done", rows_removed: 0, files_rewritten: 0 });
  });

  it("waits for a compaction of the same day that is under way, so that the compaction's file cannot put the rows back", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    const day = "2026-11-18";
    const sent = await smallFiles(id, 3, (f) => [eventOn(id, day, f * 10 + 1), eventOn(id, day, f * 10 + 2, R)]);
    // The operator's compaction has read the three files and holds its file's put.
    const gated = gatedBucket(`lake/notifications/client_id=${id}/date=${day}/part-1-3.parquet`);
    await setBucket(id, gated.bucket);
    const compacting = call(`/v1/admin/lake/compact?client_id=${id}&date=${day}`, authed(await admin(), { method: "POST" }));
    await gated.reached;
    const asked = (await (await askErasure(id, R)).json()) as Erasure;
    const alarm = runDurableObjectAlarm(counterOf(env, id));
    // Time for an erasure that did not wait its turn to rewrite the day beside the held compaction (the
    // absence of a step is seen only by waiting for it).
    await new Promise((r) => setTimeout(r, 500));
    expect((await erasureState(id, asked.id)).days_left).toBeNull();
    gated.release();
    expect((await compacting).status).toBe(200);
    await alarm;
    expect(await settleErasure(id, asked.id)).toMatchObject({ status: "done", rows_removed: 3, files_rewritten: 1 });
    expect(await rowsTo(id, R)).toBe(0);
    expect(await partitionKeys(id, day)).toEqual([`lake/notifications/client_id=${id}/date=${day}/part-01-3.parquet`]);
    expect(await reportEventIds(id, { from: `${day}T00:00:00Z`, to: "2026-11-19T00:00:00Z" })).toEqual(idsOf(sent.filter((e) => e.recipient !== R)));
  });

  it("holds back an operator's compaction of the day it is rewriting, so that the compaction's file cannot put the rows back", async () => {
    const { id } = await createClient();
    const R = recipientNumber();
    const day = "2026-11-18";
    const sent = await smallFiles(id, 3, (f) => [eventOn(id, day, f * 10 + 1), eventOn(id, day, f * 10 + 2, R)]);
    // The erasure's file is held at its put, the small files still there; a compaction beside it
    // would read them and write its own file of the range, the recipient's rows in it, after.
    const file = `lake/notifications/client_id=${id}/date=${day}/part-1-3.parquet`;
    const { bucket, holds } = gatedPuts(file, 2);
    await setBucket(id, bucket);
    const asked = (await (await askErasure(id, R)).json()) as Erasure;
    const alarm = runDurableObjectAlarm(counterOf(env, id));
    await holds[0]!.reached;
    const compacting = call(`/v1/admin/lake/compact?client_id=${id}&date=${day}`, authed(await admin(), { method: "POST" }));
    // Time for a compaction that did not wait its turn to read the small files and reach its put.
    await new Promise((r) => setTimeout(r, 500));
    holds[0]!.release();
    await vi.waitFor(async () => expect(await erasureState(id, asked.id)).toMatchObject({ status: "done", rows_removed: 3, files_rewritten: 1 }), { timeout: 20_000, interval: 50 });
    holds[1]!.release();
    expect((await compacting).status).toBe(200);
    await alarm;
    expect(await rowsTo(id, R)).toBe(0);
    expect(await partitionKeys(id, day)).toEqual([file]);
    expect(await reportEventIds(id, { from: `${day}T00:00:00Z`, to: "2026-11-19T00:00:00Z" })).toEqual(idsOf(sent.filter((e) => e.recipient !== R)));
  });
});

describe("the erasure routes", () => {
  it("refuse a malformed recipient, an unknown client or erasure, and anyone but an admin", async () => {
    const { id } = await createClient();
    const other = await createClient();
    const R = recipientNumber();
    for (const bad of [`${R}x`, "12345", "", 5511987654321, null]) {
      const res = await askErasure(id, bad);
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([400, "validation_failed"]);
    }
    const unknown = await askErasure("no-such-client", R);
    expect([unknown.status, ((await unknown.json()) as { error: { code: string } }).error.code]).toEqual([404, "client_not_found"]);
    const viewer = await signIn("viewer", [id]);
    const finance = await signIn("finance");
    for (const token of [viewer, finance]) expect((await askErasure(id, R, token)).status).toBe(403);
    expect((await call(`/v1/admin/clients/${id}/erasures`, { method: "POST", body: JSON.stringify({ recipient: R }) })).status).toBe(401);

    const asked = (await (await askErasure(id, R)).json()) as Erasure;
    expect((await getErasure(id, asked.id, viewer)).status).toBe(403);
    for (const [client, erasure] of [
      [other.id, asked.id],
      [id, crypto.randomUUID()],
      [id, "not-an-id"],
      ["no-such-client", asked.id],
    ]) {
      expect((await getErasure(client!, erasure!)).status).toBe(404);
    }
    expect((await getErasure(id, asked.id)).status).toBe(200);
    await settleErasure(id, asked.id);
  });
});
