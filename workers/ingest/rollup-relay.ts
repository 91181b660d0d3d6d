import { overviewShard, overviewShardStub, overviewShards } from "../../durable-objects/overview-shards.ts";
import { addRollup, type ClientRollup } from "../../durable-objects/rollups.ts";
import { logLine } from "../log.ts";

/**
 * This isolate's relays are at least this far apart, so that under traffic one Overview call carries
 * the rollups of every client whose ingest calls it served meanwhile, a busy client's many calls
 * merged into one: at most twenty calls a second, and at most this added to the overview's freshness
 * (50 ms rather than 100 took ~20 ms off the overview row's p99 side by side: docs/live.md, "The
 * overview's cadence"). A rollup after a quiet spell goes at once.
 */
export const RELAY_INTERVAL_MS = 50;
/**
 * A drain runs in the waitUntil of the request that started it, which has a deadline: after this
 * many rounds it stops, and the next request with rollups starts another.
 */
const MAX_ROUNDS = 50;
/** A drain older than this is taken for dead (its request's waitUntil cut short): start another. */
const STALE_DRAIN_MS = 20_000;

/** Rollups waiting to be relayed, by Overview shard, one per client shard (merged, mergeRollup). */
const waiting = new Map<number, Map<string, ClientRollup>>();
let drainStartedAt: number | null = null;
/** The running drain's end (settled either way), and whether a request waits for it to relay what it leaves. */
let drainEnded: Promise<void> = Promise.resolve();
let drainFollowed = false;
let lastRelayAt = 0;

/**
 * Queues the rollups the ClientCounters handed back with their ingest results; they reach the
 * Overview within RELAY_INTERVAL_MS, many clients per call. Nothing here is durable: a rollup lost
 * with this isolate (or a failed call) is repaired by its ClientCounter, whose flush alarm sends the
 * whole hour after handing rollups off (durable-objects/client-live.ts, `settle`).
 */
export function relayRollups(env: Env, ctx: Pick<ExecutionContext, "waitUntil">, rollups: ClientRollup[]): void {
  const shards = overviewShards(env);
  for (const r of rollups) {
    const shard = overviewShard(r.client_id, shards);
    let byClient = waiting.get(shard);
    if (!byClient) waiting.set(shard, (byClient = new Map()));
    addRollup(byClient, r);
  }
  if (waiting.size === 0) return;
  const now = Date.now();
  if (drainStartedAt !== null && now - drainStartedAt < STALE_DRAIN_MS) {
    // The running drain may be in its last round, past its last look at `waiting`: once it ends, the
    // first request that found it running relays what it left, in a drain of its own. Waiting on
    // another request's promise makes workerd print, once a process, "IoContext dropped queued
    // cross-context actions" when that wait finds nothing left: the drop is the runtime's own
    // settlement, after every reaction here ran (2026-12-07: with leftovers, the follow's relay arrived).
    if (!drainFollowed) {
      drainFollowed = true;
      ctx.waitUntil(
        drainEnded.then(() => {
          if (drainStartedAt === null && waiting.size > 0) relayRollups(env, ctx, []);
        }),
      );
    }
    return;
  }
  drainFollowed = false;
  const started = (drainStartedAt = now);
  drainEnded = drain(env).finally(() => {
    if (drainStartedAt === started) drainStartedAt = null;
  });
  ctx.waitUntil(drainEnded);
}

async function drain(env: Env): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS && waiting.size > 0; round++) {
    // A timer even when due now: the rollups of the calls this isolate serves meanwhile go along.
    // Never longer than the interval: a clock set back would otherwise hold every relay by as much.
    const wait = Math.min(RELAY_INTERVAL_MS, Math.max(0, lastRelayAt + RELAY_INTERVAL_MS - Date.now()));
    await new Promise((resolve) => setTimeout(resolve, wait));
    lastRelayAt = Date.now();
    const batch = [...waiting];
    waiting.clear();
    await Promise.all(
      batch.map(async ([shard, byClient]) => {
        try {
          await overviewShardStub(env, shard).relayed([...byClient.values()]);
        } catch (err) {
          logLine("warn", "overview_relay_failed", { shard, clients: byClient.size }, err);
        }
      }),
    );
  }
}
