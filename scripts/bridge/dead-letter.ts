import type { DeadLetter } from "./ports.ts";

/** The Kafka message a dead letter becomes (shared by the kafkajs producer and the tests' broker). */
export function deadLetterMessage(l: DeadLetter): { key: string | Buffer | null; value: string | Buffer | null; headers: Record<string, string> } {
  return {
    key: l.record.key,
    value: l.record.value,
    headers: {
      "zapmeter.error.status": String(l.status),
      "zapmeter.error.code": l.code,
      "zapmeter.error.message": l.message,
      "zapmeter.source.topic": l.record.topic,
      "zapmeter.source.partition": String(l.record.partition),
      "zapmeter.source.offset": l.record.offset,
    },
  };
}
