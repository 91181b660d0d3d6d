import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as wait } from "node:timers/promises";
import kafkajs from "kafkajs";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/local-stack.ts";
import { httpPoster } from "../../scripts/bridge/ingest-client.ts";
import { startBridge, type RunningBridge } from "../../scripts/bridge/run.ts";
import { MemoryKafka } from "../node/bridge-memory-kafka.ts";
import { baseUrl, login } from "./helpers.ts";

/**
 * The whole bridge against the real local Worker (wrangler dev): real HTTP, the seeded ingest key and
 * demo clients, real Durable Objects. No Kafka broker exists here, so the in-process Kafka-like broker
 * stands in for it (test/node/bridge-memory-kafka.ts); everything after the consumer is the real thing.
 * The last test runs the real `npm run bridge` process (kafkajs) against librdkafka's mock cluster, a
 * Kafka-protocol broker inside `kcat` (Debian package kcat), and stops it with a real SIGTERM.
 */

const run = Date.now().toString(36);
// A minute of its own, far from other tests' traffic, so the counters below are this test's alone.
const MINUTE = Date.UTC(2026, 0, 15, 3, 7);

function event(clientId: string, i: number, over: Record<string, unknown> = {}): string {
  const messageId = `wamid.BRIDGE${run}${clientId}${i}`;
  return JSON.stringify({
    event_id: `${messageId}:accepted`,
    message_id: messageId,
    client_id: clientId,
    status: "accepted",
    occurred_at: new Date(MINUTE + i * 100).toISOString(),
    recipient: "5511987654321",
    category: "utility",
    template: "order_update",
    ...over,
  });
}

const running: RunningBridge[] = [];
afterAll(async () => {
  for (const r of running) await r.stop();
});

/** A bridge of `topic` (its dead letters to `<topic>.dlq`, as `npm run bridge` names them). */
async function bridge(kafka: MemoryKafka, group: string, topic = "wa-events"): Promise<RunningBridge> {
  const r = await startBridge(
    kafka.consumer({ group, topic, maxBatch: 25 }),
    { post: httpPoster(new URL("/v1/ingest/events", baseUrl()).toString(), "dev-ingest-key"), deadLetters: kafka.deadLetters(`${topic}.dlq`), lingerMs: 20 },
    { progressSeconds: 0, print: () => {} },
  );
  running.push(r);
  return r;
}

async function drained(kafka: MemoryKafka, group: string, topic = "wa-events"): Promise<void> {
  const g = kafka.group(group, topic);
  for (let i = 0; i < 600 && g.lag() > 0; i++) await wait(100);
  expect(g.lag()).toBe(0);
}

async function acceptedInMinute(clientId: string, token: string): Promise<number> {
  const q = new URLSearchParams({ from: new Date(MINUTE).toISOString(), to: new Date(MINUTE + 60_000).toISOString() });
  const res = await fetch(`${baseUrl()}/v1/clients/${clientId}/counters?${q}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { minutes: { accepted: number }[] };
  return body.minutes.reduce((s, m) => s + m.accepted, 0);
}

describe("npm run bridge against the local Worker", () => {
  it("delivers batches, dead-letters what the Worker rejects, and a replay is absorbed by dedup", async () => {
    const kafka = new MemoryKafka();
    kafka.createTopic("wa-events", 3);
    const acme = Array.from({ length: 40 }, (_, i) => event("acme", i));
    const globex = Array.from({ length: 15 }, (_, i) => event("globex", i));
    kafka.produce("wa-events", [
      ...acme.map((value) => ({ key: "acme", value })),
      ...globex.map((value) => ({ key: "globex", value })),
      { key: "acme", value: event("acme", 99, { recipient: undefined }) },
      { key: "no-such-client", value: event("no-such-client", 1) },
      { key: "acme", value: "not json at all" },
    ]);

    const first = await bridge(kafka, `bridge-${run}`);
    await drained(kafka, `bridge-${run}`);
    expect(first.bridge.progress.snapshot()).toMatchObject({ delivered: 55, duplicates: 0, deadLettered: 3, lag: 0 });
    const letters = kafka.messages("wa-events.dlq").map((m) => [m.key, m.headers["zapmeter.error.status"], m.headers["zapmeter.error.code"]]);
    expect(letters.sort()).toEqual([
      ["acme", "0", "invalid_json"],
      ["acme", "200", "invalid_event"],
      ["no-such-client", "200", "unknown_client"],
    ]);
    const admin = await login("admin@example.com");
    expect(await acceptedInMinute("acme", admin)).toBe(40);
    expect(await acceptedInMinute("globex", admin)).toBe(15);

    // A second group reads the topic again from the start: every event arrives twice, counts stay.
    const replay = await bridge(kafka, `replay-${run}`);
    await drained(kafka, `replay-${run}`);
    expect(replay.bridge.progress.snapshot()).toMatchObject({ delivered: 55, duplicates: 55 });
    expect(await acceptedInMinute("acme", admin)).toBe(40);
    expect(await acceptedInMinute("globex", admin)).toBe(15);
  });

  it("replays its dead-letter topic once the cause is fixed: what is valid now is stored, the rest dead-lettered again", async () => {
    const kafka = new MemoryKafka();
    kafka.createTopic("wa-events", 2);
    const late = `late-${run}`;
    kafka.produce("wa-events", [
      { key: late, value: event(late, 1) },
      { key: late, value: event(late, 2) },
      { key: "acme", value: "still not json" },
    ]);
    await bridge(kafka, `dlq-first-${run}`);
    await drained(kafka, `dlq-first-${run}`);
    expect(kafka.messages("wa-events.dlq").map((m) => m.headers["zapmeter.error.code"]).sort()).toEqual(["invalid_json", "unknown_client", "unknown_client"]);

    // The client is set up; a bridge on the dead-letter topic (a group of its own) replays it.
    const admin = await login("admin@example.com");
    const created = await fetch(`${baseUrl()}/v1/admin/clients`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ id: late, name: "Late client" }),
    });
    expect(created.status).toBe(201);
    const replay = await bridge(kafka, `dlq-replay-${run}`, "wa-events.dlq");
    await drained(kafka, `dlq-replay-${run}`, "wa-events.dlq");
    expect(replay.bridge.progress.snapshot()).toMatchObject({ delivered: 2, deadLettered: 1 });
    expect(await acceptedInMinute(late, admin)).toBe(2);
    expect(kafka.messages("wa-events.dlq.dlq").map((m) => [m.value, m.headers["zapmeter.source.topic"]])).toEqual([["still not json", "wa-events.dlq"]]);
  });
});

/** librdkafka's mock cluster, kept alive by a kcat consumer; resolves with a bootstrap address. */
async function mockKafkaCluster(brokerCount = 1): Promise<{ brokers: string; stop: () => Promise<void> }> {
  const kcat = spawn("kcat", ["-X", `test.mock.num.brokers=${brokerCount}`, "-b", "unused:9092", "-C", "-t", "keepalive", "-o", "end", "-q"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  kcat.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 100 && !/127\.0\.0\.1:\d+/.test(stderr); i++) await wait(50);
  const brokers = /127\.0\.0\.1:\d+/.exec(stderr)?.[0];
  if (!brokers) throw new Error(`kcat did not start a mock cluster (apt-get install kcat): ${stderr}`);
  return {
    brokers,
    stop: async () => {
      if (kcat.exitCode === null) {
        kcat.kill("SIGTERM");
        await once(kcat, "exit");
      }
    },
  };
}

/** The local Worker behind a delay, so that batches are still in flight when the group rebalances. */
async function slowWorker(delayMs: number): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = createServer(async (req, res) => {
    requests += 1;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    await wait(delayMs);
    const upstream = await fetch(new URL(req.url!, baseUrl()), {
      method: req.method,
      headers: { "content-type": req.headers["content-type"] ?? "application/json", authorization: req.headers.authorization ?? "" },
      body: Buffer.concat(chunks),
    });
    res.writeHead(upstream.status, { "content-type": "application/json" });
    res.end(await upstream.text());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function bridgeProcess(brokers: string, topic: string, group: string, opts: { url?: string; batchSize?: number } = {}): { child: ChildProcess; stderr: () => string } {
  const child = spawn(
    process.execPath,
    ["scripts/bridge.ts", "--brokers", brokers, "--topic", topic, "--group", group, "--url", opts.url ?? baseUrl(), "--progress-seconds", "1", "--linger-ms", "20", "--batch-size", String(opts.batchSize ?? 200)],
    { cwd: ROOT, env: { ...process.env, ZAPMETER_INGEST_KEY: "dev-ingest-key", KAFKAJS_NO_PARTITIONER_WARNING: "1" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return { child, stderr: () => stderr };
}

describe("npm run bridge (kafkajs) against a Kafka-protocol broker and the local Worker", () => {
  it("consumes, commits after 2xx, dead-letters, shows progress, and a SIGTERM then a restart lose and double-count nothing", async () => {
    const cluster = await mockKafkaCluster();
    const slow = await slowWorker(300);
    const kafka = new kafkajs.Kafka({ clientId: "e2e", brokers: [cluster.brokers], logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    const topic = `wa-events-${run}`;
    const group = `bridge-${run}`;
    try {
      await admin.connect();
      await producer.connect();
      const clients = ["initech", "umbrella", "stark", "wayne"];
      const values = clients.flatMap((c) => Array.from({ length: 1500 }, (_, i) => ({ key: c, value: event(c, 1000 + i, { occurred_at: MINUTE + 30_000 + i }) })));
      for (let i = 0; i < values.length; i += 500) await producer.send({ topic, messages: values.slice(i, i + 500) });
      await producer.send({ topic, messages: [{ key: "initech", value: "{broken" }] });

      const committed = async () => (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
      const end = (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0);
      expect(end).toBe(6001);

      // First run, through a slowed Worker: SIGTERM while its first requests are in flight, nothing committed yet.
      const first = bridgeProcess(cluster.brokers, topic, group, { url: slow.url });
      for (let i = 0; i < 600 && first.child.exitCode === null && slow.requests() === 0; i++) await wait(20);
      expect(await committed()).toBe(0);
      first.child.kill("SIGTERM");
      const [code] = (await once(first.child, "exit")) as [number];
      expect(code).toBe(0);
      // The drain sent what was fetched and committed it before the consumer left; the stop line counts
      // only commits the broker acknowledged, so its lag is the broker's.
      const afterStop = await committed();
      expect(afterStop).toBeGreaterThan(0);
      expect(/lag (\d+) · stopped/.exec(first.stderr())?.[1]).toBe(String(end - afterStop));

      // Second run: resumes from the committed offsets and drains the topic.
      const second = bridgeProcess(cluster.brokers, topic, group);
      for (let i = 0; i < 600 && second.child.exitCode === null && (await committed()) < end; i++) await wait(100);
      expect(await committed()).toBe(end);
      second.child.kill("SIGTERM");
      expect(((await once(second.child, "exit")) as [number])[0]).toBe(0);
      expect(second.stderr()).toMatch(/\d+ events\/s · delivered \d+ \(\d+ duplicates\) · dead-lettered \d+ · retries \d+ · lag 0 · stopped/);

      const admin2 = await login("admin@example.com");
      for (const c of clients) expect([c, await acceptedInMinute(c, admin2)]).toEqual([c, 1500]);

      const dlq = kafka.consumer({ groupId: `dlq-reader-${run}` });
      await dlq.connect();
      await dlq.subscribe({ topics: [`${topic}.dlq`], fromBeginning: true });
      const letters: { value: string; code: string }[] = [];
      await dlq.run({ eachMessage: async ({ message }) => void letters.push({ value: message.value!.toString(), code: message.headers!["zapmeter.error.code"]!.toString() }) });
      for (let i = 0; i < 300 && letters.length === 0; i++) await wait(100);
      await dlq.disconnect();
      expect(letters.length).toBeGreaterThan(0);
      for (const l of letters) expect(l).toEqual({ value: "{broken", code: "invalid_json" });
    } finally {
      await producer.disconnect();
      await admin.disconnect();
      await slow.close();
      await cluster.stop();
    }
    // The mock cluster lets the stopped member's session expire (kafkajs' 30 s) before the restart joins.
  }, 150_000);
});

describe("two npm run bridge processes in one group (kafkajs, a three-broker Kafka-protocol cluster)", () => {
  it("a second bridge joining mid-stream (a rebalance while batches are in flight) does not crash the first; every event is counted once", async () => {
    const cluster = await mockKafkaCluster(3);
    const slow = await slowWorker(700);
    const kafka = new kafkajs.Kafka({ clientId: "e2e", brokers: [cluster.brokers], logLevel: kafkajs.logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    const topic = `wa-events-pair-${run}`;
    const group = `pair-${run}`;
    const members: ReturnType<typeof bridgeProcess>[] = [];
    try {
      await admin.connect();
      await producer.connect();
      const clients = ["hooli", "tyrell", "loja-09", "loja-10"];
      const values = clients.flatMap((c) => Array.from({ length: 1500 }, (_, i) => ({ key: c, value: event(c, 3000 + i, { occurred_at: MINUTE + 40_000 + i }) })));
      for (let i = 0; i < values.length; i += 500) await producer.send({ topic, messages: values.slice(i, i + 500) });
      const committed = async () => (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
      const end = values.length;

      const first = bridgeProcess(cluster.brokers, topic, group, { url: slow.url, batchSize: 50 });
      members.push(first);
      for (let i = 0; i < 600 && first.child.exitCode === null && (await committed()) === 0; i++) await wait(100);
      expect(await committed()).toBeLessThan(end);
      const second = bridgeProcess(cluster.brokers, topic, group, { url: slow.url, batchSize: 50 });
      members.push(second);
      for (let i = 0; i < 1200 && first.child.exitCode === null && (await committed()) < end; i++) await wait(100);

      expect([first.child.exitCode, first.stderr()]).toEqual([null, expect.not.stringMatching(/consumer failed|Crash/)]);
      expect(first.stderr()).toMatch(/bridge: commit of .* refused, left to the next reader/);
      // librdkafka's mock completes a group on the leader's SyncGroup and answers a follower whose SyncGroup
      // comes later INVALID_REQUEST; Kafka would hand it its assignment. The first member leads, so the
      // second usually cannot join here: it must then fail to start cleanly, not crash the group.
      if (second.child.exitCode !== null) expect(second.stderr()).toMatch(/^bridge: cannot start: This most likely occurs because of a request being malformed/m);
      expect(await committed()).toBe(end);
      const token = await login("admin@example.com");
      for (const c of clients) expect([c, await acceptedInMinute(c, token)]).toEqual([c, 1500]);
      for (const m of members.filter((m) => m.child.exitCode === null)) {
        m.child.kill("SIGTERM");
        expect(((await once(m.child, "exit")) as [number])[0]).toBe(0);
      }
    } finally {
      for (const m of members) if (m.child.exitCode === null) m.child.kill("SIGKILL");
      await producer.disconnect();
      await admin.disconnect();
      await slow.close();
      await cluster.stop();
    }
  }, 180_000);
});
