import { describe as explain } from "../../test/ground-truth/invariant.ts";
import { freshStateDir } from "../local-stack.ts";
import { DEMO_MESSAGES_PER_SECOND } from "../demo/traffic.ts";
import { rssMiB, slope, workerdPids } from "./processes.ts";
import { checkAll, deliver, openSession, openTarget, type SendStats, type Session, type Target } from "./session.ts";

export interface SoakReport {
  scenario: "soak";
  seed: number;
  minutes: number;
  distinctEvents: number;
  copies: number;
  requests: number;
  resent: number;
  resentBecause: Record<string, number>;
  errors: string[];
  /** The workerd runtime that runs the Worker and the Durable Objects. */
  rss: MemoryReport;
  /** Anonymous memory (heaps); the rest of RSS is file-backed (mapped storage files). */
  anon: MemoryReport;
  /** wrangler's own proxy workerd in front of the runtime (dev tooling, not zapmeter's code). */
  proxyRss: MemoryReport;
  /** Memory after COOL_DOWN_MS without traffic. */
  afterIdle: { rssMiB: number; anonMiB: number };
  /** The reads that brought the runtime to its plateau before the soak (see `warmUp`). */
  warmUp: WarmUpReport;
  differences: number;
  firstDifferences: string;
}

/** The first part of the run is warm-up (JIT, SQLite caches) and is left out of the slope. */
const WARM_UP = 0.25;
/** Warm-up reads in flight, how often memory is checked, and the growth per check that counts as flat. */
const WARM_UP_IN_FLIGHT = 16;
const WARM_UP_CHECK_EVERY = 5_000;
const WARM_UP_FLAT_MIB = 3;
const WARM_UP_MAX_REQUESTS = 150_000;
const SAMPLE_EVERY_MS = 5_000;
const COOL_DOWN_MS = 60_000;

interface WarmUpReport {
  requests: number;
  seconds: number;
  /** Runtime anonymous memory before and after. */
  startMiB: number;
  endMiB: number;
}

/**
 * Local workerd's memory climbs for its first tens of thousands of requests, whatever they do, and
 * then stays (measured 2026-11-30: a Worker answering "ok", served by workerd alone, 9 → ~245 MiB
 * over 60,000 requests and flat to 200,000; under `wrangler dev` 70 → ~520 MiB by 40,000, flat to
 * 200,000). The soak sends ~5 requests a second, ~3,000 in 10 minutes, so without this its slope
 * measured that climb, not zapmeter. Reads through the Worker, D1, R2 and every shard of a sharded
 * client (none of which change state) run until memory grows less than WARM_UP_FLAT_MIB per
 * WARM_UP_CHECK_EVERY requests; a leak of zapmeter's then shows as a slope over the soak.
 */
async function warmUp(target: Target, session: Session, pid: number): Promise<WarmUpReport> {
  const start = Date.now();
  const anon = () => rssMiB(pid)?.anon ?? 0;
  const startMiB = anon();
  const sharded = session.truth.clients.at(-1)!.id;
  const to = new Date().toISOString();
  const from = new Date(Date.now() - 86_400_000).toISOString();
  const reads = [
    () => target.api("/health"),
    () => target.api(`/v1/clients/${sharded}/counters?from=${from}&to=${to}`, { headers: { authorization: `Bearer ${session.token}` } }),
  ];
  let requests = 0;
  let last = startMiB;
  const read = async () => {
    const res = await reads[requests++ % reads.length]!();
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`warm-up read answered ${res.status}`);
  };
  while (requests < WARM_UP_MAX_REQUESTS) {
    const round = requests + WARM_UP_CHECK_EVERY;
    await Promise.all(Array.from({ length: WARM_UP_IN_FLIGHT }, async () => {
      while (requests < round) await read();
    }));
    const now = anon();
    if (now - last < WARM_UP_FLAT_MIB) break;
    last = now;
  }
  return { requests, seconds: Math.round((Date.now() - start) / 1000), startMiB: Math.round(startMiB), endMiB: Math.round(anon()) };
}

interface MemoryReport {
  startMiB: number;
  endMiB: number;
  maxMiB: number;
  slopeMiBPerMin: number;
  /** At the end of each minute, to see the shape (warm-up, then flat or growing). */
  perMinute: number[];
}

function memoryReport(points: { x: number; y: number }[], minutes: number): MemoryReport {
  return {
    startMiB: Math.round(points[0]?.y ?? 0),
    endMiB: Math.round(points.at(-1)?.y ?? 0),
    maxMiB: Math.round(Math.max(...points.map((p) => p.y))),
    slopeMiBPerMin: Math.round(slope(points.filter((p) => p.x >= minutes * WARM_UP)) * 100) / 100,
    perMinute: Array.from({ length: minutes }, (_, m) => Math.round(points.filter((p) => p.x <= m + 1).at(-1)?.y ?? 0)),
  };
}

/**
 * A bounded soak: the ground truth paced at the demo rate over `minutes` against a real `wrangler
 * dev` whose runtime was first read to its memory plateau (`warmUp`), sampling workerd's RSS; then
 * the invariant over HTTP. Memory is reported as the slope of RSS after warm-up.
 */
export async function soak(seed: number, minutes: number): Promise<SoakReport> {
  const target = await openTarget(freshStateDir("zapmeter-soak-"));
  try {
    const clients = 3;
    const messagesPerClient = Math.ceil((DEMO_MESSAGES_PER_SECOND * minutes * 60) / clients);
    const session = await openSession(target, seed, messagesPerClient);
    const { runtime: pid, proxy } = workerdPids(target.stack!.process.pid!, Number(new URL(target.base).port));
    if (pid === null) throw new Error("no workerd runtime process under wrangler dev");
    const warmed = await warmUp(target, session, pid);
    const stats: SendStats = { requests: 0, resent: 0, resentBecause: {}, errors: [] };
    const durationMs = minutes * 60_000;
    const start = Date.now();
    const samples: { x: number; total: number; anon: number; proxy: number }[] = [];
    const sampler = setInterval(() => {
      const mib = rssMiB(pid);
      const proxyMib = proxy === null ? null : rssMiB(proxy);
      if (mib !== null) samples.push({ x: (Date.now() - start) / 60_000, total: mib.total, anon: mib.anon, proxy: proxyMib?.total ?? 0 });
    }, SAMPLE_EVERY_MS);

    const total = session.deliveries.length;
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < total; i++) {
      const due = start + (i * durationMs) / total;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const p = deliver(target, session, session.deliveries[i]!, stats).finally(() => inFlight.delete(p));
      inFlight.add(p);
      // A slow server makes the sender fall behind instead of piling up unbounded requests.
      if (inFlight.size >= 16) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    // Idle for a while: memory the runtime frees once the load stops (lazy GC, caches) is not a leak.
    await new Promise((r) => setTimeout(r, COOL_DOWN_MS));
    clearInterval(sampler);
    const loaded = samples.filter((p) => p.x <= minutes);

    const differences = await checkAll(target, session);
    return {
      scenario: "soak",
      seed,
      minutes,
      distinctEvents: session.truth.events.length,
      copies: session.copies,
      requests: stats.requests,
      resent: stats.resent,
      resentBecause: stats.resentBecause,
      errors: stats.errors,
      rss: memoryReport(loaded.map((p) => ({ x: p.x, y: p.total })), minutes),
      anon: memoryReport(loaded.map((p) => ({ x: p.x, y: p.anon })), minutes),
      afterIdle: { rssMiB: Math.round(samples.at(-1)?.total ?? 0), anonMiB: Math.round(samples.at(-1)?.anon ?? 0) },
      warmUp: warmed,
      proxyRss: memoryReport(loaded.map((p) => ({ x: p.x, y: p.proxy })), minutes),
      differences: differences.length,
      firstDifferences: explain(differences),
    };
  } finally {
    await target.close();
  }
}
