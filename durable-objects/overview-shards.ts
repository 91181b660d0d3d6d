import { fnv1a } from "./client-shards.ts";
import type { Overview } from "./overview.ts";
import { logLine } from "../workers/log.ts";

/** The most Overview shards OVERVIEW_SHARDS may name. */
const MAX_OVERVIEW_SHARDS = 64;

/**
 * How many Overview objects take the clients' rollups (wrangler.toml's OVERVIEW_SHARDS): a whole
 * number from 1 to MAX_OVERVIEW_SHARDS; anything else is logged (once per isolate) and taken as 1,
 * which works at any load the top alone takes. One object serves ~1,000 requests/s and a
 * shard gets up to twenty relayed calls a second (RELAY_INTERVAL_MS) from each ingest isolate with traffic plus a whole hour
 * from each active client's flush alarm once a minute, so the capacity plan sizes it by sending
 * clients (docs/capacity.md). Any value is safe to change: the top shard keeps whatever the shards
 * hand it (docs/live.md, "Sharding the Overview").
 */
export function overviewShards(env: Pick<Env, "OVERVIEW_SHARDS">): number {
  const n = Number(env.OVERVIEW_SHARDS);
  if (Number.isInteger(n) && n >= 1 && n <= MAX_OVERVIEW_SHARDS) return n;
  if (!reportedShardCounts.has(env.OVERVIEW_SHARDS)) {
    reportedShardCounts.add(env.OVERVIEW_SHARDS);
    logLine("error", "overview_shards_invalid", { value: env.OVERVIEW_SHARDS, expected: `a whole number from 1 to ${MAX_OVERVIEW_SHARDS}`, using: 1 });
  }
  return 1;
}
/** Invalid OVERVIEW_SHARDS values this isolate has logged: every relayed call reads the setting. */
const reportedShardCounts = new Set<string>();

/** Stable shard of a client (FNV-1a of its id): a client always reports to the same Overview. */
export function overviewShard(clientId: string, shards: number): number {
  return fnv1a(clientId) % shards;
}

/** The Overview shard a client reports to. */
export function overviewOf(env: Env, clientId: string): DurableObjectStub<Overview> {
  return overviewShardStub(env, overviewShard(clientId, overviewShards(env)));
}

/** The shard that serves `/v1/live`; the others forward what they hold to it. */
export const TOP_SHARD = 0;

export function overviewShardStub(env: Env, shard: number): DurableObjectStub<Overview> {
  return env.OVERVIEW.get(env.OVERVIEW.idFromName(`overview-${shard}`));
}
