import { asc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { clients } from "../../schema/db.ts";
import { log } from "../errors.ts";
import { counterOf } from "../ingest/dispatch.ts";
import { closedDays, compactPartition, type CompactionResult } from "./compaction.ts";

/** Clients handled at once; each holds at most one row group in memory. */
const FANOUT = 4;

async function allClientIds(env: Env): Promise<string[]> {
  const rows = await drizzle(env.DB).select({ id: clients.id }).from(clients).orderBy(asc(clients.id));
  return rows.map((r) => r.id);
}

/** Runs `job` for every id, FANOUT at a time; one failing client does not stop the others. */
async function eachClient<T>(ids: string[], job: (id: string) => Promise<T>): Promise<{ results: T[]; failed: string[] }> {
  const results: T[] = [];
  const failed: string[] = [];
  for (let i = 0; i < ids.length; i += FANOUT) {
    const part = ids.slice(i, i + FANOUT);
    const settled = await Promise.allSettled(part.map(job));
    settled.forEach((s, j) => {
      if (s.status === "fulfilled") results.push(s.value);
      else {
        failed.push(part[j]!);
        log("error", null, "lake_job_failed", s.reason);
      }
    });
  }
  return { results, failed };
}

/** Flushes the outboxes of `clientIds` (every client when omitted) now; returns the keys written. */
export async function flushClients(env: Env, clientIds?: string[]): Promise<{ files: string[]; failed: string[] }> {
  const { results, failed } = await eachClient(clientIds ?? (await allClientIds(env)), (id) => counterOf(env, id).flush());
  return { files: results.flat(), failed };
}

/** Housekeeping: compacts every client's closed days (COMPACTION_DAYS back from `now`). */
export async function compactClosedDays(env: Env, now: number): Promise<{ compacted: CompactionResult[]; failed: string[] }> {
  const days = closedDays(now);
  const { results, failed } = await eachClient(await allClientIds(env), async (id) => {
    const out: CompactionResult[] = [];
    for (const date of days) {
      const r = await compactPartition(env.LAKE, id, date);
      if (r) out.push(r);
    }
    return out;
  });
  return { compacted: results.flat(), failed };
}

/** The "30 3 * * *" housekeeping job: compaction, with a summary log line; fails when a client failed. */
export async function compactionJob(env: Env, scheduledTime: number): Promise<void> {
  const { compacted, failed } = await compactClosedDays(env, scheduledTime);
  log("info", null, "lake_compaction_done", {
    files: compacted.length,
    rows: compacted.reduce((n, c) => n + c.rows, 0),
    replaced: compacted.reduce((n, c) => n + c.replaced.length, 0),
    failed: failed.length,
  });
  if (failed.length > 0) throw new Error(`compaction failed for ${failed.length} clients`);
}
