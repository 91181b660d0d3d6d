/**
 * What the bridge core needs from Kafka, as interfaces: the kafkajs adapter (kafkajs-adapter.ts) and the
 * in-process broker used by the tests (test/node/bridge-memory-kafka.ts) both implement them.
 * Offsets are decimal strings, as Kafka clients carry them (int64 does not fit a JS number).
 */

/** One record as consumed. `key` is the client id by convention; `value` the event as JSON text. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
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
