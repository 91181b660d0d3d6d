/**
 * Ingest 2xx → screen: a dashboard client holds `GET /v1/clients/:id/live` open while probes (one
 * bridged event each) go to that client; the latency of probe k is from its 200 to the first
 * `update` whose minutes' `sent` counts include it. Minutes, not `today`: today's totals start
 * again at the client's midnight, which a run may cross.
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
}

/** `sent` per minute as the socket last reported it, and their sum. */
class SentByMinute {
  private readonly minutes = new Map<number, number>();
  total = 0;

  add(msg: LiveMessage): void {
    for (const m of msg.minutes ?? []) {
      this.total += m.sent - (this.minutes.get(m.minute) ?? 0);
      this.minutes.set(m.minute, m.sent);
    }
  }
}

async function openLive(stack: BenchStack, clientId: string): Promise<{ ws: WebSocket; sent: SentByMinute }> {
  const res = await fetch(`${stack.url}/v1/live/ticket`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
    body: JSON.stringify({ client_id: clientId }),
  });
  if (res.status !== 200) throw new Error(`live ticket: ${res.status} ${await res.text()}`);
  const { ticket } = (await res.json()) as { ticket: string };
  const ws = new WebSocket(`${stack.url.replace(/^http/, "ws")}/v1/clients/${clientId}/live?ticket=${ticket}`);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no live snapshot within 10 s")), 10_000);
    ws.addEventListener("error", () => reject(new Error("live socket failed")), { once: true });
    ws.addEventListener(
      "message",
      (m) => {
        clearTimeout(timer);
        const sent = new SentByMinute();
        sent.add(JSON.parse(String(m.data)) as LiveMessage);
        resolve({ ws, sent });
      },
      { once: true },
    );
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
  opts: { client: number; run: string; intervalMs: number; maxProbes: number; until: () => boolean },
): Promise<LatencySample> {
  const clientId = benchClientId(opts.client);
  const { ws, sent } = await openLive(stack, clientId);
  const baseline = sent.total;
  const okAt: number[] = [];
  const seenAt: number[] = [];
  ws.addEventListener("message", (m) => {
    const msg = JSON.parse(String(m.data)) as LiveMessage;
    if (msg.type !== "update") return;
    sent.add(msg);
    const now = performance.now();
    for (let k = seenAt.length; k < sent.total - baseline; k++) seenAt[k] = now;
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
