import { asc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { clients } from "../../schema/db.ts";
import { mapBounded } from "../concurrency.ts";
import { log } from "../errors.ts";
import { logLine } from "../log.ts";
import { flushClient, type ShardedClient } from "../client-counters.ts";
import { closedDays } from "./closed-days.ts";
import { compactPartition, type CompactionResult } from "./compaction.ts";

/** Clients handled at once; each holds at most one row group in memory. */
const FANOUT = 4;

function lakeClients(env: Env): Promise<ShardedClient[]> {
  return drizzle(env.DB).select({ id: clients.id, shards: clients.shards }).from(clients).orderBy(asc(clients.id));
}

/** Runs `job` for every client, FANOUT at a time; one failing client does not stop the others. */
async function eachClient<T>(all: ShardedClient[], job: (client: ShardedClient) => Promise<T>): Promise<{ results: T[]; failed: string[] }> {
  const settled = await mapBounded(all, FANOUT, async (client) => {
    try {
      return { done: true as const, result: await job(client) };
    } catch (err) {
      logLine("error", "lake_job_failed", { client_id: client.id }, err);
      return { done: false as const, client: client.id };
    }
  });
  return {
    results: settled.flatMap((s) => (s.done ? [s.result] : [])),
    failed: settled.flatMap((s) => (s.done ? [] : [s.client])),
  };
}

/** Flushes the outboxes of `only` (every client when omitted) now; returns the keys written. */
export async function flushClients(env: Env, only?: ShardedClient[]): Promise<{ files: string[]; failed: string[] }> {
  const { results, failed } = await eachClient(only ?? (await lakeClients(env)), (client) => flushClient(env, client));
  return { files: results.flat(), failed };
}

/** Housekeeping: compacts every client's closed days (COMPACTION_DAYS back from `now`). */
async function compactClosedDays(env: Env, now: number): Promise<{ compacted: CompactionResult[]; failed: string[] }> {
  const days = closedDays(now);
  const { results, failed } = await eachClient(await lakeClients(env), async (client) => {
    const out: CompactionResult[] = [];
    for (const date of days) out.push(...(await compactPartition(env.LAKE, client.id, date)));
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
