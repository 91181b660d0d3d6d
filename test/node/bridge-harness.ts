import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setImmediate as tick, setTimeout as wait } from "node:timers/promises";
import { httpPoster } from "../../scripts/bridge/ingest-client.ts";
import { startBridge } from "../../scripts/bridge/run.ts";
import { MemoryKafka } from "./bridge-memory-kafka.ts";

/**
 * What the bridge tests drive the bridge core with: an in-process broker that behaves like Kafka
 * (bridge-memory-kafka.ts) and a scripted HTTP endpoint on a real local socket (the real Worker is
 * exercised in test/e2e/bridge.test.ts).
 */

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as it is. */
  body?: unknown;
  /** Drop the connection instead of answering (a network failure). */
  drop?: boolean;
}
export interface Seen {
  n: number;
  auth: string | undefined;
  /** UTF-8 bytes of the body. */
  bytes: number;
  events: { event_id: string; client_id: string }[];
}

/** Undone, last first, by runCleanups: each test file calls it in afterEach. */
export const cleanups: (() => Promise<void> | void)[] = [];
export async function runCleanups(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export async function endpoint(answer: (req: Seen) => Answer | Promise<Answer>): Promise<{ url: string; requests: Seen[] }> {
  const requests: Seen[] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const seen: Seen = { n: requests.length + 1, auth: req.headers.authorization, bytes: body.length, events: JSON.parse(body.toString("utf8")) };
    requests.push(seen);
    const a = await answer(seen);
    if (a.drop) return req.socket.destroy();
    res.writeHead(a.status, { "content-type": "application/json", ...a.headers });
    res.end(typeof a.body === "string" ? a.body : JSON.stringify(a.body ?? { accepted: seen.events.length, duplicates: 0, rejected: [] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/ingest/events`, requests };
}

let seq = 0;
export function event(clientId: string, over: Record<string, unknown> = {}): string {
  seq += 1;
  return JSON.stringify({ event_id: `e${seq}:accepted`, message_id: `e${seq}`, client_id: clientId, status: "accepted", occurred_at: 1_763_630_130_000, recipient: "5511987654321", ...over });
}

/** Produces `n` events per client, keyed by client id. */
export function produce(kafka: MemoryKafka, counts: Record<string, number>, partition?: number): string[] {
  const values: string[] = [];
  for (const [client, n] of Object.entries(counts)) {
    for (let i = 0; i < n; i++) values.push(event(client));
    kafka.produce("wa", values.slice(-n).map((value) => ({ key: client, value, partition })));
  }
  return values.map((v) => (JSON.parse(v) as { event_id: string }).event_id);
}

export async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await wait(5);
  if (!cond()) throw new Error(`gave up waiting for: ${what}`);
}

/**
 * A bridge on a fresh consumer of group `g`; delays it asked to wait are recorded, not waited, and the
 * lines it prints are kept in `lines`.
 */
export async function bridgeOn(
  kafka: MemoryKafka,
  url: string,
  opts: {
    group?: string;
    batchSize?: number;
    maxBytes?: number;
    maxInFlight?: number;
    heartbeatMs?: number;
    maxBatch?: number;
    key?: string;
    lingerMs?: number;
    timeoutMs?: number;
    /** Instead of recording the delay and going on at once. */
    sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  } = {},
) {
  const consumer = kafka.consumer({ group: opts.group ?? "g", topic: "wa", maxBatch: opts.maxBatch ?? 50 });
  const delays: number[] = [];
  const deadLetters = kafka.deadLetters("wa.dlq");
  const lines: string[] = [];
  const running = await startBridge(
    consumer,
    {
      post: httpPoster(url, opts.key ?? "zmk_test", opts.timeoutMs),
      deadLetters,
      maxBatchRecords: opts.batchSize ?? 500,
      maxBatchBytes: opts.maxBytes,
      maxInFlight: opts.maxInFlight,
      heartbeatMs: opts.heartbeatMs,
      lingerMs: opts.lingerMs ?? 5,
      sleep:
        opts.sleep ??
        (async (ms) => {
          delays.push(ms);
          await tick();
        }),
    },
    { progressSeconds: 0, print: (line) => lines.push(line) },
  );
  cleanups.push(() => running.stop());
  return { consumer, running, delays, deadLetters, lines };
}

export function fresh(partitions = 3): MemoryKafka {
  const kafka = new MemoryKafka();
  kafka.createTopic("wa", partitions);
  kafka.createTopic("wa.dlq", 1);
  return kafka;
}

export const endOffsets = (kafka: MemoryKafka) => new Map(kafka.partitions("wa").map((log, p) => [p, BigInt(log.length)] as const).filter(([, n]) => n > 0n));
export const idsOf = (requests: Seen[]) => requests.flatMap((r) => r.events.map((e) => e.event_id));
export const header = (kafka: MemoryKafka, name: string) => kafka.messages("wa.dlq").map((m) => m.headers[name]);
