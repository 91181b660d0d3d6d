/**
 * Ingest 2xx → screen: a dashboard holds a live socket open while probes (one bridged event each) go
 * to one client; the latency of probe k is from its 200 to the first `update` that counts it. On the
 * client's own page (`GET /v1/clients/:id/live`) that is the minutes' `sent` counts; on the overview
 * (`GET /v1/live`) the client's row's `hour.sent` (the probe client gets nothing but probes, and a run
 * is shorter than the hour). Not `today`: today's totals start again at the client's midnight, which
 * a run may cross.
 */
import { DEV_INGEST_KEY } from "../scripts/demo/catalog.ts";
import { benchClientId, benchEvent } from "./events.ts";
import type { BenchStack } from "./stack.ts";
import { percentile, round } from "./stats.ts";

/** One probing window: the probes sent, and the latency of each one an update showed. */
export interface LatencySample {
  probes: number;
  /** Updates that reached the socket before the probe's HTTP response reached the harness. */
  early: number;
  latenciesMs: number[];
}

export interface LatencyFigures {
  probes: number;
  seen: number;
  /** Updates that reached the socket before the probe's HTTP response reached the harness (counted as 0 ms). */
  before_response: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

interface LiveMessage {
  type: string;
  minutes?: { minute: number; sent: number }[];
  clients?: { client_id: string; hour: { sent: number } }[];
}

/** Which page's socket: the client's own, or the overview of every client. */
export type LiveView = "client" | "overview";

/** The probe client's `sent` count as a socket last showed it (undefined until it has). */
interface SentCount {
  readonly total: number | undefined;
  add(msg: LiveMessage): void;
}

/** A client socket's `sent` per minute, and their sum. */
class SentByMinute implements SentCount {
  private readonly minutes = new Map<number, number>();
  total: number | undefined;

  add(msg: LiveMessage): void {
    for (const m of msg.minutes ?? []) {
      this.total = (this.total ?? 0) + m.sent - (this.minutes.get(m.minute) ?? 0);
      this.minutes.set(m.minute, m.sent);
    }
    this.total ??= 0;
  }
}

/** The overview's row of the client: its last hour's `sent`. */
class SentInRow implements SentCount {
  total: number | undefined;
  private readonly clientId: string;

  constructor(clientId: string) {
    this.clientId = clientId;
  }

  add(msg: LiveMessage): void {
    const row = msg.clients?.find((c) => c.client_id === this.clientId);
    if (row) this.total = row.hour.sent;
  }
}

/** Opens the view's socket and resolves once it has shown the client (the snapshot, or its chunk with the row). */
async function openLive(stack: BenchStack, clientId: string, view: LiveView): Promise<{ ws: WebSocket; sent: SentCount }> {
  const res = await fetch(`${stack.url}/v1/live/ticket`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
    body: JSON.stringify(view === "client" ? { client_id: clientId } : {}),
  });
  if (res.status !== 200) throw new Error(`live ticket: ${res.status} ${await res.text()}`);
  const { ticket } = (await res.json()) as { ticket: string };
  const path = view === "client" ? `/v1/clients/${clientId}/live` : "/v1/live";
  const ws = new WebSocket(`${stack.url.replace(/^http/, "ws")}${path}?ticket=${ticket}`);
  const sent = view === "client" ? new SentByMinute() : new SentInRow(clientId);
  return new Promise((resolve, reject) => {
    // An overview's first viewer waits while its shard starts priming every client (below).
    const timer = setTimeout(() => reject(new Error(`no ${view} snapshot within 60 s`)), 60_000);
    ws.addEventListener("error", () => reject(new Error("live socket failed")), { once: true });
    const shown = (m: MessageEvent) => {
      sent.add(JSON.parse(String(m.data)) as LiveMessage);
      if (sent.total === undefined) return;
      clearTimeout(timer);
      ws.removeEventListener("message", shown);
      resolve({ ws, sent });
    };
    ws.addEventListener("message", shown);
  });
}

/**
 * Sends up to `maxProbes` probes, one every `intervalMs` from the start (a probe whose response came
 * later than its successor's slot is followed at once), until `until()` says stop; then waits 2 s for
 * stragglers. One at a time, so the k-th `sent` the socket reports is probe k. Waiting a full
 * interval after each response instead made the period response time + interval: under the bridged
 * load (~80 ms responses) slower than the update throttle, so most probes found the client idle.
 */
export async function probeLiveLatency(
  stack: BenchStack,
  opts: { client: number; run: string; intervalMs: number; maxProbes: number; until: () => boolean; view?: LiveView },
): Promise<LatencySample> {
  const clientId = benchClientId(opts.client);
  const { ws, sent } = await openLive(stack, clientId, opts.view ?? "client");
  const baseline = sent.total!;
  const okAt: number[] = [];
  const seenAt: number[] = [];
  ws.addEventListener("message", (m) => {
    const msg = JSON.parse(String(m.data)) as LiveMessage;
    if (msg.type !== "update") return;
    sent.add(msg);
    const now = performance.now();
    for (let k = seenAt.length; k < sent.total! - baseline; k++) seenAt[k] = now;
  });
  const t0 = Date.now();
  const start = performance.now();
  for (let k = 0; k < opts.maxProbes && !opts.until(); k++) {
    const event = { ...benchEvent(opts.run, opts.client, k * 3, t0), occurred_at: Date.now() };
    const res = await fetch(`${stack.url}/v1/ingest/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${DEV_INGEST_KEY}` },
      body: JSON.stringify([event]),
    });
    okAt[k] = performance.now();
    if (res.status !== 200) throw new Error(`probe ${k}: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
    const next = start + (k + 1) * opts.intervalMs - performance.now();
    if (next > 0) await new Promise((r) => setTimeout(r, next));
  }
  await new Promise((r) => setTimeout(r, 2_000));
  ws.close();
  const latenciesMs: number[] = [];
  let early = 0;
  okAt.forEach((ok, k) => {
    const seen = seenAt[k];
    if (seen === undefined) return;
    if (seen < ok) early++;
    latenciesMs.push(Math.max(0, seen - ok));
  });
  return { probes: okAt.length, early, latenciesMs };
}

/**
 * The overview's first viewer: the Overview primes every client it never heard from when its first
 * viewer arrives (durable-objects/overview.ts), waking each one's object, a one-off of ~10 ms a
 * client on this one thread. Taken out of the windows (it is no steady state) by opening an overview
 * socket until it has been quiet for 2 s. Opened again, it only starts Overview shards that were
 * evicted (the priming is stored). Resolves with the seconds it took.
 */
export async function primeOverview(stack: BenchStack, client: number): Promise<number> {
  const started = performance.now();
  const { ws } = await openLive(stack, benchClientId(client), "overview");
  let last = performance.now();
  ws.addEventListener("message", () => (last = performance.now()));
  while (performance.now() - last < 2_000 && performance.now() - started < 300_000) await new Promise((r) => setTimeout(r, 200));
  ws.close();
  return round((performance.now() - started) / 1000, 1);
}

/** Probing windows pooled: percentiles over every probe of every window. */
export function latencyFigures(samples: LatencySample[]): LatencyFigures {
  const latencies = samples.flatMap((s) => s.latenciesMs);
  return {
    probes: samples.reduce((n, s) => n + s.probes, 0),
    seen: latencies.length,
    before_response: samples.reduce((n, s) => n + s.early, 0),
    p50_ms: round(percentile(latencies, 0.5)),
    p99_ms: round(percentile(latencies, 0.99)),
    max_ms: round(Math.max(...latencies)),
  };
}
