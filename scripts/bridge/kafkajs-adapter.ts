import kafkajs from "kafkajs";
import type { Consumer, KafkaConfig, Producer, SASLOptions } from "kafkajs";
import { deadLetterMessage } from "./dead-letter.ts";
import { recordText, type ConsumerPort, type DeadLetter, type DeadLetterPort, type SourceBatch } from "./ports.ts";

export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  ssl: boolean;
  /** SASL/PLAIN or SCRAM credentials (from the environment, never the command line). */
  sasl?: { mechanism: "plain" | "scram-sha-256" | "scram-sha-512"; username: string; password: string };
}

/** A kafkajs client; its own logs go to stderr at WARN and above. */
export function kafkaClient(conn: KafkaConnection): kafkajs.Kafka {
  const config: KafkaConfig = { clientId: conn.clientId, brokers: conn.brokers, ssl: conn.ssl, logLevel: kafkajs.logLevel.WARN };
  if (conn.sasl) config.sasl = conn.sasl as SASLOptions;
  return new kafkajs.Kafka(config);
}

/**
 * The group consumer behind the bridge. Offsets are committed only by the bridge (autoCommit off,
 * nothing auto-resolved), so a batch the bridge did not commit is fetched again.
 */
export function kafkaConsumer(
  kafka: kafkajs.Kafka,
  opts: { groupId: string; topic: string; fromBeginning: boolean; partitionsConcurrently: number; onCrash: (error: Error) => void },
): ConsumerPort {
  const consumer: Consumer = kafka.consumer({ groupId: opts.groupId });
  let running = false;
  let joinFailure: Error | undefined;
  // kafkajs restarts itself after retriable errors; anything else ends the bridge. A failure to join
  // the group is not a crash of a running bridge: `run` rejects with it instead.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart) return;
    if (running) opts.onCrash(payload.error);
    else joinFailure = payload.error;
  });
  return {
    async run(onBatch, onAssigned) {
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        onAssigned(Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition }))));
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [opts.topic], fromBeginning: opts.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: opts.partitionsConcurrently,
        eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary, heartbeat, isRunning, isStale }) => {
          const { topic, partition } = batch;
          const source: SourceBatch = {
            topic,
            partition,
            highWatermark: batch.highWatermark,
            records: batch.messages.map((m) => ({
              topic,
              partition,
              offset: m.offset,
              key: recordText(m.key),
              value: recordText(m.value),
            })),
            async commit(nextOffset) {
              // Past the fetch's whole span once its last record is done: a transactional producer's commit
              // marker (or aborted records) after it would otherwise stay uncommitted, a lag of 1 or more
              // on the partition at rest, which is what operators alert on (docs/kafka.md).
              const last = batch.messages.at(-1);
              const offset = last && BigInt(nextOffset) === BigInt(last.offset) + 1n ? (BigInt(batch.lastOffset()) + 1n).toString() : nextOffset;
              // Straight to the coordinator: consumer.commitOffsets returns without committing, and without
              // an error, once the consumer is stopping. Resolved only after the broker acknowledged, so a
              // failed commit leaves kafkajs to fetch the same records again while it owns the partition.
              await commitOffsetsIfNecessary({ topics: [{ topic, partitions: [{ partition, offset }] }] });
              resolveOffset((BigInt(offset) - 1n).toString());
            },
            heartbeat,
            // isStale only means a seek is pending; after a crash or a stop kafkajs is no longer running.
            isActive: () => isRunning() && !isStale(),
          };
          await onBatch(source);
        },
      });
      // kafkajs' run resolves even when joining failed (it reports that as a crash).
      if (joinFailure) throw joinFailure;
      running = true;
    },
    // kafkajs' disconnect stops fetching, waits for eachBatch calls in flight, then leaves the group.
    // The bridge has drained by then (run.ts), so those calls return without committing.
    stop: () => consumer.disconnect(),
  };
}

/**
 * Bytes of dead letters per send. kafkajs puts a send's messages for one partition in one record batch,
 * which the broker refuses whole above the topic's max.message.bytes (1 MiB by default) with
 * MESSAGE_TOO_LARGE, for good: the letters of a fetch of records that are not JSON, or of a refused
 * 4 MiB request, sent at once, would fail every retry and hold their partition back for ever. Half the
 * default leaves room for the records' own framing.
 */
const DEAD_LETTER_SEND_BYTES = 512 * 1024;

type Message = ReturnType<typeof deadLetterMessage>;

function messageBytes(m: Message): number {
  let bytes = Buffer.byteLength(m.key ?? "") + Buffer.byteLength(m.value ?? "");
  for (const [name, value] of Object.entries(m.headers)) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  return bytes;
}

/** Consecutive runs of messages of at most `max` bytes (a larger message alone). */
function inSends(messages: Message[], max: number): Message[][] {
  const sends: Message[][] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = messageBytes(m);
    const last = sends.at(-1);
    if (last && bytes + size <= max) {
      last.push(m);
      bytes += size;
    } else {
      sends.push([m]);
      bytes = size;
    }
  }
  return sends;
}

/** Dead letters keep the original key and value; why they were refused travels in headers. */
export function kafkaDeadLetters(kafka: kafkajs.Kafka, topic: string): DeadLetterPort & { connect(): Promise<void>; disconnect(): Promise<void> } {
  // Not `idempotent`: kafkajs marks it experimental. A retried send may duplicate a dead letter, never lose one.
  const producer: Producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  return {
    connect: () => producer.connect(),
    disconnect: () => producer.disconnect(),
    async send(letters: DeadLetter[]) {
      // A failure part way sends them all again: the ones already written are duplicated, none is lost.
      for (const messages of inSends(letters.map(deadLetterMessage), DEAD_LETTER_SEND_BYTES)) await producer.send({ topic, acks: -1, messages });
    },
  };
}
