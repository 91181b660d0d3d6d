/**
 * The pace of the Overview shards' forwards to the top, in a module of its own (no runtime types) so
 * that the cost model (bench/cost-model.ts) prices the forwards the objects make.
 */

/** Forwards from all the other shards together reach the top at most this many times a second: half its ~1,000 requests/s. */
const TOP_FORWARDS_PER_SECOND = 500;
const MIN_FORWARD_INTERVAL_MS = 50;

/**
 * How far apart a shard's forwards to the top are, with `shards` Overview shards: 50 ms (a forward
 * is an overview row's second wait, after the relay's), longer from 27 shards on, so that the
 * forwards of all the others stay within TOP_FORWARDS_PER_SECOND (126 ms at 64).
 */
export function forwardIntervalMs(shards: number): number {
  return Math.max(MIN_FORWARD_INTERVAL_MS, Math.ceil(((shards - 1) * 1_000) / TOP_FORWARDS_PER_SECOND));
}
