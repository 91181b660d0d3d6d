/** Ingest throughput of one workload, with the storage work per event from the response headers. */
import { FLUSH_INTERVAL_MS, FLUSH_SPREAD_MS } from "../durable-objects/lake-schedule.ts";
import { DEV_INGEST_KEY } from "../scripts/demo/catalog.ts";
import { driveInWorker, type LoadPlan, type LoadResult } from "./load.ts";
import { cpuSeconds, type BenchStack } from "./stack.ts";
import { percentile, round } from "./stats.ts";

/** WHATSAPP_APP_SECRET of .dev.vars.example (the local stack's secret). */
export const DEV_APP_SECRET = "dev-app-secret";

export interface IngestFigures {
  kind: LoadPlan["kind"];
  clients: number;
  events_per_request: number;
  concurrency: number;
  requests: number;
  accepted: number;
  failures: Record<string, number>;
  elapsed_s: number;
  events_per_s: number;
  request_p50_ms: number;
  request_p99_ms: number;
  rows_written_per_event: number;
  /** The part of rows_written_per_event the objects wrote in the background (lake and counter flushes) during the run. */
  background_rows_written_per_event: number;
  rows_read_per_event: number;
  do_calls_per_event: number;
  /** workerd CPU (Worker + Durable Objects + local SQLite) per request: an upper bound for the Worker's billed CPU. */
  workerd_cpu_ms_per_request: number;
  /** How busy the load generator's thread was (0–1); near 1 it, not the stack, set the pace. */
  load_thread_busy: number;
}

/** A load plan without what the stack supplies (URL, keys) and the event clock. */
export type IngestOptions = Omit<LoadPlan, "baseUrl" | "ingestKey" | "appSecret" | "t0">;

/**
 * The ingest workloads (issue 8): Kafka-bridged batches of 1,000 events of one client over 100
 * clients, 4 in flight; signed webhooks of 1–10 statuses over 1,000 clients, 16 in flight; and the
 * same webhooks carrying one status each, as Meta often sends them (the cost model's worst case).
 */
const WORKLOADS = {
  bridged: { kind: "bridged", clients: 100, batchSize: 1_000, concurrency: 4 },
  webhook: { kind: "webhook", clients: 1_000, batchSize: 0, concurrency: 16 },
  webhook_single: { kind: "webhook", clients: 1_000, batchSize: 1, concurrency: 16 },
} as const;

export type WorkloadName = keyof typeof WORKLOADS;

/** `s` as a workload name, `fallback` when absent; throws on an unknown name. */
export function workloadName(s: string | undefined, fallback: WorkloadName): WorkloadName {
  if (s === undefined) return fallback;
  if (!Object.hasOwn(WORKLOADS, s)) throw new Error(`unknown workload ${s} (${Object.keys(WORKLOADS).join(", ")})`);
  return s as WorkloadName;
}

/** What a workload posts: bridged batches or signed webhooks. */
export const workloadKind = (name: WorkloadName): LoadPlan["kind"] => WORKLOADS[name].kind;

/** The default number of clients a workload spreads over. */
export const workloadClients = (name: WorkloadName): number => WORKLOADS[name].clients;

/** One run of a workload: clients 0..n-1 (the workload's own number unless given), round robin. */
export function workload(
  name: WorkloadName,
  o: { run: string; durationMs: number; maxRequests: number; clients?: number },
): IngestOptions {
  const { kind, batchSize, concurrency } = WORKLOADS[name];
  const clients = Array.from({ length: o.clients ?? workloadClients(name) }, (_, i) => i);
  return { kind, run: o.run, clients, batchSize, concurrency, durationMs: o.durationMs, maxRequests: o.maxRequests };
}

function plan(stack: BenchStack, o: IngestOptions, t0: number): LoadPlan {
  return { ...o, baseUrl: stack.url, ingestKey: DEV_INGEST_KEY, appSecret: DEV_APP_SECRET, t0 };
}

/**
 * Warm-up laps, each over a larger prefix of the clients, WARM_LAPS in all. Locally workerd evicts an
 * object 10 s after its last call and starting one costs ~10 ms of CPU, so a single lap over 1,000
 * new objects (12–30 s) ended with its first objects gone again, and a measured run that began that
 * way could stay cold: under ~100 requests/s every client waits over 10 s between calls, each call
 * starts its object, and the rate stays low (438–1,031 webhook events/s at 4–8 ms of CPU per request,
 * against 1,300–2,000 warm). A lap adds a fifth of the objects to ones already warm, so it stays well
 * under 10 s and each object is called again before it is evicted. Production keeps idle objects for
 * over a minute, so warm objects are what it runs on.
 */
const WARM_LAPS = 5;

/** One measured window of a workload: what the load saw, and the workerd CPU it cost. */
export interface IngestRound {
  load: LoadResult;
  cpuSeconds: number;
}

/**
 * Warm-up laps, which create the objects and leave them warm. `warmRun` names the warm-up's events:
 * rounds of one workload share it, so after the first round every warm-up event is a duplicate (no
 * rows written, no lake work) and only re-wakes the objects. Returns the events it stored (new ones),
 * which armed their objects' flush alarms.
 */
export async function warmUp(stack: BenchStack, o: IngestOptions, warmRun = o.run): Promise<number> {
  const t0 = Date.now();
  let stored = 0;
  for (let lap = 1; lap <= WARM_LAPS; lap++) {
    // Request i goes to client i with the same events in every lap: after its first lap a client's
    // warm-up events are duplicates, which write no rows and leave no flush work for the measured run.
    const clients = o.clients.slice(0, Math.ceil((o.clients.length * lap) / WARM_LAPS));
    const lapResult = await driveInWorker(plan(stack, { ...o, clients, run: `${warmRun}-warm`, requestsPerSecond: undefined, batchSize: 10, durationMs: 120_000, maxRequests: clients.length }, t0));
    stored += lapResult.accepted;
  }
  return stored;
}

/** A window must end this long before the first flush alarm of its round can fire. */
const ALARM_MARGIN_MS = 3_000;

/**
 * How long a window starting at `now` may run and still end ALARM_MARGIN_MS before the first flush
 * alarm that writes since `firstWriteAt` (null: none yet, so no limit) can fire: FLUSH_INTERVAL_MS -
 * FLUSH_SPREAD_MS after an object's first write.
 */
export function msBeforeAlarms(now: number, firstWriteAt: number | null): number {
  return firstWriteAt === null ? Infinity : firstWriteAt + FLUSH_INTERVAL_MS - FLUSH_SPREAD_MS - ALARM_MARGIN_MS - now;
}

/** Whether a window of `durationMs` starting at `now` ends before the round's alarms (msBeforeAlarms). */
export function endsBeforeAlarms(now: number, durationMs: number, firstWriteAt: number | null): boolean {
  return durationMs <= msBeforeAlarms(now, firstWriteAt);
}

/** One measured, bounded window of a workload on warm objects. */
export async function ingestRound(stack: BenchStack, o: IngestOptions): Promise<IngestRound> {
  const cpuBefore = cpuSeconds(stack.workerdPid);
  const load = await driveInWorker(plan(stack, o, Date.now()));
  return { load, cpuSeconds: cpuSeconds(stack.workerdPid) - cpuBefore };
}

/** The figures of one or more rounds of a workload, pooled: sums over sums, percentiles over all requests. */
export function ingestFigures(o: IngestOptions, rounds: IngestRound[]): IngestFigures {
  const sum = (f: (r: LoadResult) => number) => rounds.reduce((n, r) => n + f(r.load), 0);
  const requests = sum((r) => r.requests);
  const ok = sum((r) => r.accepted + r.duplicates);
  const elapsedMs = sum((r) => r.elapsedMs);
  const failures: Record<string, number> = {};
  for (const r of rounds) for (const [k, n] of Object.entries(r.load.failures)) failures[k] = (failures[k] ?? 0) + n;
  const latencies = rounds.flatMap((r) => r.load.latenciesMs);
  const cpu = rounds.reduce((n, r) => n + r.cpuSeconds, 0);
  return {
    kind: o.kind,
    clients: o.clients.length,
    events_per_request: round(sum((r) => r.events) / Math.max(1, requests)),
    concurrency: o.concurrency,
    requests,
    accepted: sum((r) => r.accepted),
    failures,
    elapsed_s: round(elapsedMs / 1000, 3),
    events_per_s: round(sum((r) => r.accepted) / (elapsedMs / 1000), 0),
    request_p50_ms: round(percentile(latencies, 0.5)),
    request_p99_ms: round(percentile(latencies, 0.99)),
    rows_written_per_event: round(sum((r) => r.rowsWritten) / Math.max(1, ok), 4),
    background_rows_written_per_event: round(sum((r) => r.backgroundRowsWritten) / Math.max(1, ok), 4),
    rows_read_per_event: round(sum((r) => r.rowsRead) / Math.max(1, ok), 4),
    do_calls_per_event: round(sum((r) => r.doCalls) / Math.max(1, ok), 5),
    workerd_cpu_ms_per_request: round((cpu * 1000) / Math.max(1, requests), 3),
    load_thread_busy: round(sum((r) => r.loadThreadBusy * r.elapsedMs) / Math.max(1, elapsedMs), 3),
  };
}

/** A warm-up and one window of a workload, as figures (bench:profile and bench:ab measure single windows). */
export async function benchIngest(stack: BenchStack, o: IngestOptions): Promise<IngestFigures> {
  await warmUp(stack, o);
  return ingestFigures(o, [await ingestRound(stack, o)]);
}
