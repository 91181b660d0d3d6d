/**
 * Drives ingest load from a worker thread (a separate event loop and core from the harness), with a
 * bounded loop that stops by itself: at `durationMs` or after `maxRequests`, whichever comes first.
 */
import { Worker } from "node:worker_threads";
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
  /** Events per bridged request. */
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
}

/** The events request `i` of a plan carries; `next` holds each client's next event number. */
export function requestEvents(plan: LoadPlan, i: number, next: Map<number, number>): BenchEvent[] {
  const client = plan.clients[i % plan.clients.length]!;
  const from = next.get(client) ?? 0;
  const count = plan.kind === "bridged" ? plan.batchSize : webhookSize(i);
  next.set(client, from + count);
  return benchBatch(plan.run, client, from, count, plan.t0);
}

function requestInit(plan: LoadPlan, events: BenchEvent[]): { url: string; init: RequestInit } {
  if (plan.kind === "bridged") {
    return {
      url: `${plan.baseUrl}/v1/ingest/events`,
      init: { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${plan.ingestKey}` }, body: JSON.stringify(events) },
    };
  }
  const { body, signature } = signedWebhook(events, plan.appSecret);
  return {
    url: `${plan.baseUrl}/v1/webhooks/whatsapp`,
    init: { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signature }, body },
  };
}

/** Runs a plan in this thread. */
export async function drive(plan: LoadPlan): Promise<LoadResult> {
  const out: LoadResult = { requests: 0, events: 0, accepted: 0, duplicates: 0, failures: {}, latenciesMs: [], elapsedMs: 0, doCalls: 0, rowsWritten: 0, backgroundRowsWritten: 0, rowsRead: 0 };
  const next = new Map<number, number>();
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
      const { url, init } = requestInit(plan, events);
      const t = performance.now();
      try {
        const res = await fetch(url, init);
        const body = (await res.json()) as { accepted?: number; duplicates?: number };
        out.latenciesMs.push(performance.now() - t);
        out.requests += 1;
        out.events += events.length;
        if (res.status !== 200) {
          out.failures[res.status] = (out.failures[res.status] ?? 0) + 1;
          continue;
        }
        out.accepted += body.accepted ?? 0;
        out.duplicates += body.duplicates ?? 0;
        out.doCalls += Number(res.headers.get("x-zapmeter-do-calls") ?? Number.NaN);
        out.rowsWritten += Number(res.headers.get("x-zapmeter-rows-written") ?? Number.NaN);
        out.rowsRead += Number(res.headers.get("x-zapmeter-rows-read") ?? Number.NaN);
        out.backgroundRowsWritten += Number(res.headers.get("x-zapmeter-background-rows-written") ?? Number.NaN);
      } catch (err) {
        const key = (err as Error).name;
        out.failures[key] = (out.failures[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, lane));
  out.elapsedMs = performance.now() - start;
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

