import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { compactPartition } from "../../workers/lake/compaction.ts";
import { compactionJob } from "../../workers/lake/jobs.ts";
import { reportRows, reportStream } from "../../workers/lake/report.ts";
import { withMethods, createClient, ingestKey, postEvents, runCron } from "./helpers.ts";
import { detailEvent, flush, parseCsv, readParquet, report } from "./lake-fixtures.ts";

const DAY = "2026-11-18";
const RANGE = { from: "2026-11-18T00:00:00Z", to: "2026-11-19T00:00:00Z", format: "parquet" };

async function keys(clientId: string): Promise<string[]> {
  return (await env.LAKE.list({ prefix: `lake/notifications/client_id=${clientId}/date=${DAY}/` })).objects.map((o) => o.key).sort();
}

async function reportIds(clientId: string): Promise<string[]> {
  const { rows } = await readParquet(await (await report(clientId, RANGE)).arrayBuffer());
  return rows.map((r) => r.event_id as string).sort();
}

/** Three flushes on the same closed day: three small files. */
async function threeSmallFiles(clientId: string): Promise<string[]> {
  const key = await ingestKey();
  const ids: string[] = [];
  for (let f = 0; f < 3; f++) {
    // Offsets that stay on 2026-11-18 (DAY1 is 23:59:58; go back in time).
    const events = Array.from({ length: 4 }, (_, i) => detailEvent(clientId, -(f * 10 + i + 10)));
    await postEvents(events, key);
    await flush(clientId);
    ids.push(...events.map((e) => e.event_id as string));
  }
  return ids.sort();
}

async function runHousekeeping(): Promise<void> {
  await runCron("30 3 * * *", Date.parse("2026-11-20T03:30:00Z"));
}

describe("housekeeping compaction", () => {
  it("merges a closed day's small files into one covering file, rows unchanged", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
    expect(await keys(id)).toEqual([1, 2, 3].map((s) => `lake/notifications/client_id=${id}/date=${DAY}/part-${s}-${s}.parquet`));
    expect(await reportIds(id)).toEqual(ids);

    await runHousekeeping();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);

    // Running again changes nothing.
    await runHousekeeping();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
  });

  it("a report whose listed files two compactions replace before it opens them reads their rows from the compacted file, each once", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
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
    const ids = await threeSmallFiles(id);
    await runHousekeeping();
    const late = detailEvent(id, -100);
    await postEvents([late], await ingestKey());
    await flush(id);
    // Stale copies of absorbed ranges (a flush retried across the compaction; a source the compaction
    // has not deleted yet, starting where the compacted file starts) are superseded, not read.
    const old = await (await env.LAKE.get(`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`))!.arrayBuffer();
    for (const range of ["2-2", "1-1"]) await env.LAKE.put(`lake/notifications/client_id=${id}/date=${DAY}/part-${range}.parquet`, old);
    const all = [...ids, late.event_id as string].sort();
    expect(await reportIds(id)).toEqual(all);

    await runHousekeeping();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-4.parquet`]);
    expect(await reportIds(id)).toEqual(all);
  });

  it("lists a partition past R2's first page (a day of minute flushes is 1,440 files)", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
    // Pages of one object stand in for R2's pages of 1,000.
    const paged = withMethods(env.LAKE, { list: ((options?: R2ListOptions) => env.LAKE.list({ ...options, limit: 1 })) as R2Bucket["list"] });
    await compactPartition(paged, id, DAY);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("a report whose listing of a partition spans pages misses no rows when a compaction runs between the pages", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
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
    const ids = await threeSmallFiles(id);
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
    await threeSmallFiles(id);
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

  it("keeps the files of a day it cannot compact, and fails the job after compacting the other clients", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
    const broken = await createClient();
    const brokenKeys = [1, 2].map((s) => `lake/notifications/client_id=${broken.id}/date=${DAY}/part-${s}-${s}.parquet`);
    for (const key of brokenKeys) await env.LAKE.put(key, "not a Parquet file");
    const logged = vi.spyOn(console, "error");
    await expect(compactionJob(env, Date.parse("2026-11-20T03:30:00Z"))).rejects.toThrow("compaction failed for 1 clients");
    // The failure's line names the client to look at (docs/operations.md).
    const failures = logged.mock.calls.map((args) => JSON.parse(String(args[0])) as { event: string; client_id?: string }).filter((l) => l.event === "lake_job_failed");
    expect(failures.map((l) => l.client_id)).toEqual([broken.id]);
    expect(await keys(broken.id)).toEqual(brokenKeys);
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);
  });

  it("leaves today's partition alone", async () => {
    const { id } = await createClient();
    await threeSmallFiles(id);
    await runCron("30 3 * * *", Date.parse("2026-11-18T03:30:00Z"));
    expect(await keys(id)).toHaveLength(3);
  });
});
