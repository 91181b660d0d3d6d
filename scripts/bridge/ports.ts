/**
 * What the bridge core needs from Kafka, as interfaces: the kafkajs adapter (kafkajs-adapter.ts) and the
 * in-process broker used by the tests (test/node/bridge-memory-kafka.ts) both implement them, and both
 * read keys and values with `recordText`.
 * Offsets are decimal strings, as Kafka clients carry them (int64 does not fit a JS number).
 */

/**
 * One record as consumed. `key` is the client id by convention; `value` the event as JSON text. Either is
 * the bytes consumed when they are not UTF-8 (`recordText`): such a record is dead-lettered as it came.
 */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | Buffer | null;
  value: string | Buffer | null;
}

// The BOM is kept, so that the text is exactly the bytes consumed (a value that starts with one is not JSON).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * A key or value as `SourceRecord` holds it: the text of UTF-8 bytes, else the bytes themselves. Read
 * leniently, bad bytes would become U+FFFD: two events whose ids differ only there would be posted as one,
 * the second dropped as its duplicate and committed past, and their dead letters would not be the
 * originals. The endpoint refuses a body that is not UTF-8 for that reason, but it sees only this text.
 */
export function recordText(bytes: Buffer | null): string | Buffer | null {
  if (bytes === null) return null;
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes;
  }
}

/**
 * Records fetched from one partition. The consumer hands a partition's next batch only after the
 * previous call for that partition resolved, and waits for in-flight calls before a rebalance or stop
 * completes (kafkajs' eachBatch contract; Kafka's eager rebalance).
 */
export interface SourceBatch {
  topic: string;
  partition: number;
  /** The partition's log end offset when fetched: lag = highWatermark - committed. */
  highWatermark: string;
  records: SourceRecord[];
  /**
   * Commits `nextOffset` (last handled offset + 1) for the group; resolves once the broker acknowledged it.
   * Rejects when the group refuses it (rebalance in progress, a newer generation, an evicted member) or the
   * coordinator cannot be reached.
   */
  commit(nextOffset: string): Promise<void>;
  /** Keeps the membership alive during long retries; rejects when a rebalance takes the partition away. */
  heartbeat(): Promise<void>;
  /** False once this member lost the partition (fenced, rebalanced away) or its consumer stopped running: stop, do not commit. */
  isActive(): boolean;
}

export interface ConsumerPort {
  /**
   * Joins the group and delivers batches to `onBatch` until `stop`. Resolves once running. `onAssigned`
   * hears this member's partitions after every join (each rebalance).
   */
  run(onBatch: (batch: SourceBatch) => Promise<void>, onAssigned: (partitions: { topic: string; partition: number }[]) => void): Promise<void>;
  /** Stops fetching, waits for in-flight `onBatch` calls, leaves the group. Batches are inactive from the start of a stop. */
  stop(): Promise<void>;
}

/** A record the endpoint refused for good, with why, bound for the dead-letter topic. */
export interface DeadLetter {
  record: SourceRecord;
  /** HTTP status of the refusal (200 when the endpoint rejected just this record). */
  status: number;
  code: string;
  message: string;
}

export interface DeadLetterPort {
  /** Resolves only once every letter is durable in the dead-letter topic. */
  send(letters: DeadLetter[]): Promise<void>;
}
