import { createRequire } from "node:module";
import type kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { Bridge, type BridgeOptions } from "../../scripts/bridge/core.ts";
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

/** The dead-letter topic's max.message.bytes at its default (1 MiB). */
const MAX_MESSAGE_BYTES = 1_048_588;

const sentBytes = (m: Sent) =>
  Buffer.byteLength(m.key ?? "") + Buffer.byteLength(m.value ?? "") + Object.entries(m.headers).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

/**
 * The bridge core behind the kafkajs adapter's consumer and dead-letter producer, on a stand-in kafkajs
 * client, posting to an endpoint that stores everything unless `post` says otherwise. `fetched` hands it
 * one batch of partition 0 as kafkajs does (`handOver` a batch built by the test) and resolves with the
 * offsets committed. Retries are counted, not waited; the 20th stops the bridge, so that a batch that
 * would be retried for ever ends the test instead.
 */
async function adapterBridge(post: BridgeOptions["post"] = async (events) => ({ kind: "delivered", accepted: events.length, duplicates: 0, rejected: [] })) {
  let eachBatch!: EachBatch;
  const sent: Sent[] = [];
  const posted: string[] = [];
  const refusedSends: number[] = [];
  /** Offsets handed to kafkajs' resolveOffset: its next fetch starts after the last one. */
  const resolved: string[] = [];
  /** Sends the producer fails (a leader election, say) before it takes them again. */
  const failing = { sends: 0 };
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
    // kafkajs puts every message of one send bound for one partition in a single record batch
    // (src/protocol/requests/produce/v3/request.js), and the broker refuses a record batch above
    // max.message.bytes with MESSAGE_TOO_LARGE, which kafkajs does not retry. The dead-letter topic has
    // one partition here.
    async send(record: { messages: Sent[] }) {
      if (failing.sends > 0) {
        failing.sends -= 1;
        throw new Error("There is no leader for this topic-partition as we are in the middle of a leadership election");
      }
      const bytes = record.messages.reduce((n, m) => n + sentBytes(m), 0);
      if (bytes > MAX_MESSAGE_BYTES) {
        refusedSends.push(bytes);
        throw new Error("The request included a message larger than the max message size the server will accept");
      }
      sent.push(...record.messages);
    },
  };
  const kafka = { consumer: () => consumer, producer: () => producer } as unknown as kafkajs.Kafka;
  let retries = 0;
  const bridge: Bridge = new Bridge({
    post: async (events) => {
      posted.push(...events);
      return post(events);
    },
    deadLetters: kafkaDeadLetters(kafka, "wa.dlq"),
    lingerMs: 1,
    sleep: async () => {
      retries += 1;
      if (retries >= 20) void bridge.stop();
    },
  });
  await kafkaConsumer(kafka, { groupId: "g", topic: "wa", fromBeginning: true, partitionsConcurrently: 1, onCrash: () => {} }).run(bridge.handleBatch, () => {});

  async function handOver(batch: unknown, over: { commitRefused?: Error; isStale?: () => boolean } = {}): Promise<string[]> {
    const commits: string[] = [];
    await eachBatch({
      batch,
      resolveOffset: (offset: string) => void resolved.push(offset),
      commitOffsetsIfNecessary: async (o: { topics: { partitions: { offset: string }[] }[] }) => {
        if (over.commitRefused) throw over.commitRefused;
        commits.push(o.topics[0]!.partitions[0]!.offset);
      },
      heartbeat: async () => {},
      isRunning: () => true,
      isStale: over.isStale ?? (() => false),
    });
    return commits;
  }
  const fetched = (messages: { key: Buffer | null; value: Buffer | null }[]) =>
    handOver({ topic: "wa", partition: 0, highWatermark: String(messages.length), lastOffset: () => String(messages.length - 1), messages: messages.map((m, i) => ({ offset: String(i), ...m })) });
  return { fetched, handOver, posted, sent, refusedSends, resolved, failing, retries: () => retries };
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

describe("kafkajs adapter: dead letters too many for one record batch", () => {
  it("counts each letter's headers in what a send holds: tiny records refused with long headers still go in sends the broker takes", async () => {
    const { fetched, sent, refusedSends, retries } = await adapterBridge();
    // 10,000 five-byte records that are not JSON: each letter is a few bytes of key and value and ~250 of headers.
    const values = Array.from({ length: 10_000 }, () => Buffer.from([0, 0, 0, 0, 7]));
    const commits = await fetched(values.map((value) => ({ key: Buffer.from("acme"), value })));

    expect({ commits, deadLettered: sent.length, retries: retries(), refusedSends: refusedSends.length }).toEqual({ commits: ["10000"], deadLettered: 10_000, retries: 0, refusedSends: 0 });
  });

  it("commits only after every send was taken: a send that failed is sent again first", async () => {
    const { fetched, sent, failing, retries } = await adapterBridge();
    failing.sends = 1;
    const values = Array.from({ length: 3 }, (_, i) => Buffer.from(`not json ${i}`));
    const commits = await fetched(values.map((value) => ({ key: Buffer.from("acme"), value })));

    expect(sent.map((m) => m.headers["zapmeter.source.offset"])).toEqual(["0", "1", "2"]);
    expect({ commits, retries: retries() }).toEqual({ commits: ["3"], retries: 1 });
  });

  it("dead-letters and commits a whole fetch of records that are not JSON (Avro, say), in sends the broker takes", async () => {
    const { fetched, sent, refusedSends, retries } = await adapterBridge();
    // kafkajs fetches up to 1 MiB a partition: 4,000 Avro-ish records of 250 bytes.
    const values = Array.from({ length: 4000 }, (_, i) => Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), Buffer.alloc(245, i % 251)]));
    const commits = await fetched(values.map((value) => ({ key: Buffer.from("acme"), value })));

    expect({ commits, deadLettered: sent.length, retries: retries(), refusedSends: refusedSends.length }).toEqual({ commits: ["4000"], deadLettered: 4000, retries: 0, refusedSends: 0 });
    expect(sent.map((m) => m.headers["zapmeter.source.offset"])).toEqual(values.map((_, i) => String(i)));
  });

  it("dead-letters and commits every record of a 4 MiB request answered 400, in sends the broker takes", async () => {
    const { fetched, sent, refusedSends, retries } = await adapterBridge(async () => ({ kind: "dead_letter", status: 400, code: "malformed_batch", message: "every record is a batch" }));
    // 400 records of 10 KB, each a JSON array of events (a producer batching).
    const values = Array.from({ length: 400 }, (_, i) => Buffer.from(JSON.stringify([{ event_id: `e${i}`, client_id: "acme", pad: "x".repeat(10_000) }])));
    const commits = await fetched(values.map((value) => ({ key: Buffer.from("acme"), value })));

    expect({ commits, deadLettered: sent.length, retries: retries(), refusedSends: refusedSends.length }).toEqual({ commits: ["400"], deadLettered: 400, retries: 0, refusedSends: 0 });
  });
});

// kafkajs' own Batch: what eachBatch is handed, with the control records filtered out of `messages`.
const Batch = createRequire(import.meta.url)("kafkajs/src/consumer/batch.js") as new (topic: string, fetchedOffset: string, data: unknown) => { messages: unknown[] };

describe("kafkajs adapter: a transactional producer's topic", () => {
  it("commits past the commit marker ending a fetch, so the group's lag comes back to 0", async () => {
    const { handOver } = await adapterBridge();
    const value = (i: number) => Buffer.from(JSON.stringify({ event_id: `e${i}`, client_id: "acme" }));
    // Offsets 0-2: one transaction's events; 3: its commit marker. The log ends at 4.
    const batch = new Batch("wa", "0", {
      partition: 0,
      highWatermark: "4",
      abortedTransactions: [],
      messages: [
        ...[0, 1, 2].map((i) => ({ offset: String(i), key: Buffer.from("acme"), value: value(i), isControlRecord: false })),
        { offset: "3", key: Buffer.alloc(4), value: Buffer.alloc(6), isControlRecord: true },
      ],
    });
    expect(batch.messages).toHaveLength(3);
    // "3" would leave the marker uncommitted: a lag of 1 on every such partition at rest, which is what
    // docs/kafka.md says to alert on.
    expect(await handOver(batch)).toEqual(["4"]);
  });
});

describe("kafkajs adapter: where kafkajs fetches next", () => {
  it("resolves the last offset it committed past (kafkajs fetches from the one after), the commit marker's too", async () => {
    const { fetched, handOver, resolved } = await adapterBridge();
    expect(await fetched([0, 1].map((i) => ({ key: Buffer.from("acme"), value: Buffer.from(event(`r${i}`)) })))).toEqual(["2"]);
    expect(resolved).toEqual(["1"]);
    const batch = new Batch("wa", "2", {
      partition: 0,
      highWatermark: "5",
      abortedTransactions: [],
      messages: [
        { offset: "2", key: Buffer.from("acme"), value: Buffer.from(event("r2")), isControlRecord: false },
        { offset: "3", key: Buffer.from("acme"), value: Buffer.from(event("r3")), isControlRecord: false },
        { offset: "4", key: Buffer.alloc(4), value: Buffer.alloc(6), isControlRecord: true },
      ],
    });
    expect(await handOver(batch)).toEqual(["5"]);
    expect(resolved).toEqual(["1", "4"]);
  });

  it("resolves nothing when the group refuses the commit, so that kafkajs fetches the same records again", async () => {
    const { handOver, resolved } = await adapterBridge();
    const messages = [0, 1].map((i) => ({ offset: String(i), key: Buffer.from("acme"), value: Buffer.from(event(`s${i}`)) }));
    const commits = await handOver(
      { topic: "wa", partition: 0, highWatermark: "2", lastOffset: () => "1", messages },
      { commitRefused: new Error("The group is rebalancing, so a rejoin is needed") },
    );
    expect(commits).toEqual([]);
    expect(resolved).toEqual([]);
  });

  it("neither posts nor commits a batch kafkajs marks stale (a seek is pending)", async () => {
    const { handOver, posted, resolved } = await adapterBridge();
    const messages = [{ offset: "0", key: Buffer.from("acme"), value: Buffer.from(event("t0")) }];
    expect(await handOver({ topic: "wa", partition: 0, highWatermark: "1", lastOffset: () => "0", messages }, { isStale: () => true })).toEqual([]);
    expect([posted, resolved]).toEqual([[], []]);
  });
});

describe("kafkajs adapter: a consumer that fails", () => {
  function stubConsumer(joinFailure?: Error) {
    const handlers = new Map<string, (e: { payload: { error: Error; restart: boolean } }) => void>();
    const consumer = {
      events: { CRASH: "consumer.crash", GROUP_JOIN: "consumer.group_join" },
      on(name: string, handler: (e: { payload: { error: Error; restart: boolean } }) => void) {
        handlers.set(name, handler);
      },
      async connect() {},
      async subscribe() {},
      // kafkajs' run resolves even when joining failed, having reported it as a crash.
      async run() {
        if (joinFailure) handlers.get("consumer.crash")!({ payload: { error: joinFailure, restart: false } });
      },
      async disconnect() {},
    };
    const crashes: Error[] = [];
    const port = kafkaConsumer({ consumer: () => consumer } as unknown as kafkajs.Kafka, {
      groupId: "g",
      topic: "wa",
      fromBeginning: true,
      partitionsConcurrently: 1,
      onCrash: (e) => void crashes.push(e),
    });
    const crash = (error: Error, restart: boolean) => handlers.get("consumer.crash")!({ payload: { error, restart } });
    return { port, crashes, crash };
  }

  it("rejects run with a failure to join the group, not reporting it as the crash of a running bridge", async () => {
    const failure = new Error("The group coordinator is not available");
    const { port, crashes } = stubConsumer(failure);
    await expect(port.run(async () => {}, () => {})).rejects.toBe(failure);
    expect(crashes).toEqual([]);
  });

  it("once running, reports a crash kafkajs does not restart from, and only that", async () => {
    const { port, crashes, crash } = stubConsumer();
    await port.run(async () => {}, () => {});
    crash(new Error("connection reset, restarting"), true);
    const fatal = new Error("The group is rebalancing, so a rejoin is needed");
    crash(fatal, false);
    expect(crashes).toEqual([fatal]);
  });
});
