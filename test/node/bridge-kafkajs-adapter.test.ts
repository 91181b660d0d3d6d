import type kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { Bridge } from "../../scripts/bridge/core.ts";
import { kafkaConsumer, kafkaDeadLetters } from "../../scripts/bridge/kafkajs-adapter.ts";

/**
 * The kafkajs adapter (consumer and dead-letter producer) around the bridge core, fed by a stand-in
 * kafkajs client: no broker runs here, and what is under test is how the adapter reads the bytes kafkajs
 * hands over and what it writes back. The real client against a Kafka-protocol broker is in
 * test/e2e/bridge.test.ts.
 */

interface Sent {
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers: Record<string, string>;
}

type EachBatch = (payload: unknown) => Promise<void>;

/**
 * The bridge core behind the kafkajs adapter's consumer and dead-letter producer, on a stand-in kafkajs
 * client, posting to an endpoint that stores everything. `fetched` hands it one batch of partition 0 as
 * kafkajs does and resolves with the offsets committed.
 */
async function adapterBridge() {
  let eachBatch!: EachBatch;
  const sent: Sent[] = [];
  const posted: string[] = [];
  const consumer = {
    events: { CRASH: "consumer.crash", GROUP_JOIN: "consumer.group_join" },
    on() {},
    async connect() {},
    async subscribe() {},
    async run(opts: { eachBatch: EachBatch }) {
      eachBatch = opts.eachBatch;
    },
    async disconnect() {},
  };
  const producer = {
    async send(record: { messages: Sent[] }) {
      sent.push(...record.messages);
    },
  };
  const kafka = { consumer: () => consumer, producer: () => producer } as unknown as kafkajs.Kafka;
  const bridge = new Bridge({
    post: async (events) => {
      posted.push(...events);
      return { kind: "delivered", accepted: events.length, duplicates: 0, rejected: [] };
    },
    deadLetters: kafkaDeadLetters(kafka, "wa.dlq"),
    lingerMs: 1,
  });
  await kafkaConsumer(kafka, { groupId: "g", topic: "wa", fromBeginning: true, partitionsConcurrently: 1, onCrash: () => {} }).run(bridge.handleBatch, () => {});

  async function fetched(messages: { key: Buffer | null; value: Buffer | null }[]): Promise<string[]> {
    const commits: string[] = [];
    await eachBatch({
      batch: { topic: "wa", partition: 0, highWatermark: String(messages.length), messages: messages.map((m, i) => ({ offset: String(i), ...m })) },
      resolveOffset: () => {},
      commitOffsetsIfNecessary: async (o: { topics: { partitions: { offset: string }[] }[] }) => void commits.push(o.topics[0]!.partitions[0]!.offset),
      heartbeat: async () => {},
      isRunning: () => true,
      isStale: () => false,
    });
    return commits;
  }
  return { fetched, posted, sent };
}

const event = (id: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({ event_id: `${id}:delivered`, message_id: id, client_id: "acme", status: "delivered", occurred_at: 1_763_630_130_000, recipient: "5511987654321", ...over });

describe("kafkajs adapter: the bytes of keys and values", () => {
  it("dead-letters values that are not UTF-8 with their bytes, never posting them as text with U+FFFD, posts UTF-8 unchanged, and commits past all", async () => {
    const { fetched, posted, sent } = await adapterBridge();
    // Two events of a Latin-1 producer, "café:delivered" and "cafè:delivered" (0xE9, 0xE8): read leniently
    // both are "caf\uFFFD:delivered", one event to the endpoint, the other lost as its duplicate.
    const cafe = Buffer.from(event("café"), "latin1");
    const cafeGrave = Buffer.from(event("cafè"), "latin1");
    const valid = Buffer.from(event("ação", { template: "promoção 🎉" }));
    // UTF-8 all the same, but not JSON: its dead letter must keep the BOM too.
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(event("bom"))]);
    const key = Buffer.from("acme");
    const commits = await fetched([cafe, cafeGrave, valid, withBom].map((value) => ({ key, value })));

    expect(posted).toEqual([valid.toString("utf8")]);
    expect(Buffer.from(posted[0]!)).toEqual(valid);
    expect(sent.map((m) => [Buffer.from(m.key!), Buffer.from(m.value!), m.headers["zapmeter.error.code"], m.headers["zapmeter.source.offset"]])).toEqual([
      [key, cafe, "invalid_utf8", "0"],
      [key, cafeGrave, "invalid_utf8", "1"],
      [key, withBom, "invalid_json", "3"],
    ]);
    expect(commits).toEqual(["4"]);
  });

  it("dead-letters a record whose key is not UTF-8, so that two clients' keys are never read as one", async () => {
    const { fetched, posted, sent } = await adapterBridge();
    const key = Buffer.from("acmé", "latin1");
    const value = Buffer.from(event("m1"));
    const commits = await fetched([{ key, value }]);

    expect(posted).toEqual([]);
    expect(sent.map((m) => [m.key, Buffer.from(m.value!), m.headers["zapmeter.error.code"], m.headers["zapmeter.error.message"]])).toEqual([
      [key, value, "invalid_utf8", "key is not UTF-8"],
    ]);
    expect(commits).toEqual(["1"]);
  });
});
