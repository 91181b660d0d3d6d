/**
 * Browser updates of one client go out at most this often, however many ingest calls land; a sharded
 * client's shard 0 asks the other shards for their counts this often while someone watches. A
 * throttle, not a debounce: the first change after a quiet interval goes out at once. Under steady
 * traffic the interval is most of the ingest → screen p99, which is why it is this short (the
 * measurements that set it: docs/live.md). In a module of its own (no runtime types) so that the
 * cost model (bench/cost-model.ts) prices the time its timer keeps a watched object awake.
 */
export const BROADCAST_INTERVAL_MS = 100;
