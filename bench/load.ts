/**
 * Drives ingest load from a worker thread (a separate event loop and core from the harness), with a
 * bounded loop that stops by itself: at `durationMs` or after `maxRequests`, whichever comes first.
 */
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { INGEST_STATS_HEADERS } from "../schema/api.ts";
import { benchBatch, signedWebhook, webhookSize, type BenchEvent } from "./events.ts";

export interface LoadPlan {
  kind: "bridged" | "webhook";
  baseUrl: string;
  ingestKey: string;
  appSecret: string;
  run: string;
  t0: number;
  /** Client indices the load goes to (round robin). */
  clients: number[];
  /** Events per request; 0 for webhooks carrying the 1–10 mix of `webhookSize`. */
  batchSize: number;
  concurrency: number;
  durationMs: number;
  maxRequests: number;
  /** Paced load: request i starts no earlier than i / requestsPerSecond after the start (open loop). */
  requestsPerSecond?: number;
}

export interface LoadResult {
  requests: number;
  events: number;
  accepted: number;
  duplicates: number;
  failures: Record<string, number>;
  latenciesMs: number[];
  elapsedMs: number;
  doCalls: number;
  rowsWritten: number;
  backgroundRowsWritten: number;
  rowsRead: number;
  /**
   * Share of the run the load thread's event loop was busy (0–1). Near 1, the generator and not
   * the stack set the pace.
   */
  loadThreadBusy: number;
}

/** The events request `i` of a plan carries; `next` holds each client's next event number. */
export function requestEvents(plan: LoadPlan, i: number, next: Map<number, number>): BenchEvent[] {
  const client = plan.clients[i % plan.clients.length]!;
  const from = next.get(client) ?? 0;
  const count = plan.batchSize || webhookSize(i);
  next.set(client, from + count);
  return benchBatch(plan.run, client, from, count, plan.t0);
}

interface PlannedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

function requestFor(plan: LoadPlan, events: BenchEvent[]): PlannedRequest {
  if (plan.kind === "bridged") {
    return { path: "/v1/ingest/events", headers: { "content-type": "application/json", authorization: `Bearer ${plan.ingestKey}` }, body: JSON.stringify(events) };
  }
  const { body, signature } = signedWebhook(events, plan.appSecret);
  return { path: "/v1/webhooks/whatsapp", headers: { "content-type": "application/json", "x-hub-signature-256": signature }, body };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * How long past its window a request may stay unanswered before it counts as failed: many times any
 * request's p99 here (~100 ms), and a hung call must not keep the loop from stopping by itself.
 */
const REQUEST_GRACE_MS = 5_000;

/**
 * One POST over a kept-alive connection, failed as `TimeoutError` after `timeoutMs` without an
 * answer. node:http rather than fetch: undici's fetch spent ~1 ms of the load thread per request,
 * enough for the generator to set the pace of a cheap route.
 */
function post(agent: Agent, base: URL, r: PlannedRequest, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: base.hostname, port: base.port, path: r.path, method: "POST", headers: { ...r.headers, "content-length": Buffer.byteLength(r.body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.setTimeout(Math.max(1, timeoutMs), () => req.destroy(Object.assign(new Error(`no answer within ${Math.round(timeoutMs)} ms`), { name: "TimeoutError" })));
    req.end(r.body);
  });
}

/** Runs a plan in this thread. */
export async function drive(plan: LoadPlan): Promise<LoadResult> {
  const out: LoadResult = { requests: 0, events: 0, accepted: 0, duplicates: 0, failures: {}, latenciesMs: [], elapsedMs: 0, doCalls: 0, rowsWritten: 0, backgroundRowsWritten: 0, rowsRead: 0, loadThreadBusy: 0 };
  const next = new Map<number, number>();
  const base = new URL(plan.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: plan.concurrency });
  const loop = performance.eventLoopUtilization();
  const start = performance.now();
  const deadline = start + plan.durationMs;
  let issued = 0;
  const lane = async () => {
    while (issued < plan.maxRequests && performance.now() < deadline) {
      const i = issued++;
      if (plan.requestsPerSecond) {
        const due = start + (i * 1000) / plan.requestsPerSecond;
        if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      }
      const events = requestEvents(plan, i, next);
      const planned = requestFor(plan, events);
      const t = performance.now();
      try {
        const res = await post(agent, base, planned, deadline + REQUEST_GRACE_MS - t);
        out.latenciesMs.push(performance.now() - t);
        out.requests += 1;
        out.events += events.length;
        if (res.status !== 200) {
          out.failures[res.status] = (out.failures[res.status] ?? 0) + 1;
          continue;
        }
        const body = JSON.parse(res.body) as { accepted?: number; duplicates?: number };
        out.accepted += body.accepted ?? 0;
        out.duplicates += body.duplicates ?? 0;
        out.doCalls += Number(res.headers[INGEST_STATS_HEADERS.calls] ?? Number.NaN);
        out.rowsWritten += Number(res.headers[INGEST_STATS_HEADERS.rowsWritten] ?? Number.NaN);
        out.rowsRead += Number(res.headers[INGEST_STATS_HEADERS.rowsRead] ?? Number.NaN);
        out.backgroundRowsWritten += Number(res.headers[INGEST_STATS_HEADERS.backgroundRowsWritten] ?? Number.NaN);
      } catch (err) {
        const key = (err as Error).name;
        out.failures[key] = (out.failures[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, lane));
  out.elapsedMs = performance.now() - start;
  out.loadThreadBusy = performance.eventLoopUtilization(loop).utilization;
  agent.destroy();
  return out;
}

/** Runs a plan in a worker thread and resolves with its result. */
export function driveInWorker(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./load-worker.ts", import.meta.url), { workerData: plan });
    worker.once("message", (r: LoadResult) => resolve(r));
    worker.once("error", reject);
    worker.once("exit", (code) => code !== 0 && reject(new Error(`load worker exited with ${code}`)));
  });
}

