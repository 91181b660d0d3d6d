/**
 * When a ClientCounter's flush alarm fires (durable-objects/lake-flush.ts). A module of its own, free
 * of runtime types, so the benchmark harness (Node) can wait out the alarms a window left behind.
 */

/** Detail rows wait at most this long in the outbox before the alarm writes them to the lake. */
export const FLUSH_INTERVAL_MS = 60_000;
/**
 * Each object flushes a fixed part of this earlier than FLUSH_INTERVAL_MS (from its id), so clients
 * that started sending together (a deploy, a backlog, a benchmark's warm-up) do not all flush in the
 * same second: on one machine that is a burst of Parquet encodes and R2 PUTs in front of live traffic.
 */
export const FLUSH_SPREAD_MS = 20_000;
