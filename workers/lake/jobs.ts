import { asc } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { clients } from "../../schema/db.ts";
import { mapBounded } from "../concurrency.ts";
import { log } from "../errors.ts";
import { logLine } from "../log.ts";
import { compactClient, flushClient, type ShardedClient } from "../client-counters.ts";
import { closedDays } from "./closed-days.ts";

/** Clients flushed at once (`POST /v1/admin/flush`). */
const FLUSH_FANOUT = 4;
/** Objects the nightly cron asks at once; each call only records the days and arms the object's alarm. */
const ASK_FANOUT = 32;

function lakeClients(env: Env): Promise<ShardedClient[]> {
  return drizzle(env.DB).select({ id: clients.id, shards: clients.shards }).from(clients).orderBy(asc(clients.id));
}

/** Runs `job` for every client, `limit` at a time; one failing client does not stop the others. */
async function eachClient<T>(all: ShardedClient[], limit: number, job: (client: ShardedClient) => Promise<T>): Promise<{ results: T[]; failed: string[] }> {
  const settled = await mapBounded(all, limit, async (client) => {
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
  const { results, failed } = await eachClient(only ?? (await lakeClients(env)), FLUSH_FANOUT, (client) => flushClient(env, client));
  return { files: results.flat(), failed };
}

/**
 * The "30 3 * * *" housekeeping job: asks every client's object to compact its closed days
 * (COMPACTION_DAYS back from `scheduledTime`) in its own alarm, which logs what it did
 * (durable-objects/lake-compaction.ts). The cron reads no file itself: at ~1,000 small files per
 * busy client-day, all clients' reads would be millions of subrequests in one invocation. Fails when
 * an object could not be asked.
 */
export async function compactionJob(env: Env, scheduledTime: number): Promise<void> {
  const days = closedDays(scheduledTime);
  const all = await lakeClients(env);
  const { failed } = await eachClient(all, ASK_FANOUT, (client) => compactClient(env, client, days));
  log("info", null, "lake_compaction_asked", { clients: all.length, failed: failed.length });
  if (failed.length > 0) throw new Error(`compaction could not be asked of ${failed.length} clients`);
}
