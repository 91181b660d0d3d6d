import { describe as explain } from "../../test/ground-truth/invariant.ts";
import { freshStateDir } from "../local-stack.ts";
import { DEMO_MESSAGES_PER_SECOND } from "../demo/traffic.ts";
import { rssMiB, slope, workerdPids } from "./processes.ts";
import { checkAll, deliver, openSession, openTarget, type SendStats } from "./session.ts";

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
  differences: number;
  firstDifferences: string;
}

/** The first part of the run is warm-up (JIT, SQLite caches) and is left out of the slope. */
const WARM_UP = 0.25;
const SAMPLE_EVERY_MS = 5_000;
const COOL_DOWN_MS = 60_000;

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
 * dev`, sampling workerd's RSS; then the invariant over HTTP. Memory is reported as the slope of RSS
 * after warm-up.
 */
export async function soak(seed: number, minutes: number): Promise<SoakReport> {
  const target = await openTarget(freshStateDir("zapmeter-soak-"));
  try {
    const clients = 3;
    const messagesPerClient = Math.ceil((DEMO_MESSAGES_PER_SECOND * minutes * 60) / clients);
    const session = await openSession(target, seed, messagesPerClient);
    const { runtime: pid, proxy } = workerdPids(target.stack!.process.pid!, Number(new URL(target.base).port));
    if (pid === null) throw new Error("no workerd runtime process under wrangler dev");
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
      proxyRss: memoryReport(loaded.map((p) => ({ x: p.x, y: p.proxy })), minutes),
      differences: differences.length,
      firstDifferences: explain(differences),
    };
  } finally {
    await target.close();
  }
}
