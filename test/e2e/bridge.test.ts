import { setTimeout as wait } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { httpPoster } from "../../scripts/bridge/ingest-client.ts";
import { startBridge, type RunningBridge } from "../../scripts/bridge/run.ts";
import { MemoryKafka } from "../node/bridge-memory-kafka.ts";
import { baseUrl, login } from "./helpers.ts";

/**
 * The whole bridge against the real local Worker (wrangler dev): real HTTP, the seeded ingest key and
 * demo clients, real Durable Objects. No Kafka broker exists here, so the in-process Kafka-like broker
 * stands in for it (test/node/bridge-memory-kafka.ts); everything after the consumer is the real thing.
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

async function bridge(kafka: MemoryKafka, group: string): Promise<RunningBridge> {
  const r = await startBridge(
    kafka.consumer({ group, topic: "wa-events", maxBatch: 25 }),
    { post: httpPoster(new URL("/v1/ingest/events", baseUrl()).toString(), "dev-ingest-key"), deadLetters: kafka.deadLetters("wa-events.dlq"), lingerMs: 20 },
    { progressSeconds: 0, print: () => {} },
  );
  running.push(r);
  return r;
}

async function drained(kafka: MemoryKafka, group: string): Promise<void> {
  const g = kafka.group(group, "wa-events");
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
  it("delivers per-client batches, dead-letters what the Worker rejects, and a replay is absorbed by dedup", async () => {
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
});
