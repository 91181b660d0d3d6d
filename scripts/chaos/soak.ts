import { describe as explain } from "../../test/ground-truth/invariant.ts";
import { freshStateDir } from "../local-stack.ts";
import { rssMiB, slope, workerdPid } from "./processes.ts";
import { checkAll, deliver, openSession, openTarget, type SendStats } from "./session.ts";

export interface SoakReport {
  scenario: "soak";
  seed: number;
  minutes: number;
  distinctEvents: number;
  copies: number;
  requests: number;
  resent: number;
  errors: string[];
  rss: { startMiB: number; endMiB: number; maxMiB: number; slopeMiBPerMin: number; samples: number; perMinute: number[] };
  differences: number;
  firstDifferences: string;
}

/** `npm start`'s demo rate: 20 new messages a second (scripts/demo/traffic.ts). */
export const DEMO_MESSAGES_PER_SECOND = 20;
/** The first part of the run is warm-up (JIT, SQLite caches) and is left out of the slope. */
const WARM_UP = 0.25;
const SAMPLE_EVERY_MS = 5_000;

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
    const pid = workerdPid(target.stack!.process.pid!);
    if (pid === null) throw new Error("no workerd process under wrangler dev");
    const stats: SendStats = { requests: 0, resent: 0, errors: [] };
    const durationMs = minutes * 60_000;
    const start = Date.now();
    const samples: { x: number; y: number }[] = [];
    const sampler = setInterval(() => {
      const mib = rssMiB(pid);
      if (mib !== null) samples.push({ x: (Date.now() - start) / 60_000, y: mib });
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
    clearInterval(sampler);

    const differences = await checkAll(target, session);
    const steady = samples.filter((s) => s.x >= minutes * WARM_UP);
    return {
      scenario: "soak",
      seed,
      minutes,
      distinctEvents: session.truth.events.length,
      copies: session.copies,
      requests: stats.requests,
      resent: stats.resent,
      errors: stats.errors,
      rss: {
        startMiB: Math.round(samples[0]?.y ?? 0),
        endMiB: Math.round(samples.at(-1)?.y ?? 0),
        maxMiB: Math.round(Math.max(...samples.map((s) => s.y))),
        slopeMiBPerMin: Math.round(slope(steady) * 100) / 100,
        samples: samples.length,
        // RSS at the end of each minute, to see the shape (warm-up, then flat or growing).
        perMinute: Array.from({ length: minutes }, (_, m) => Math.round(samples.filter((s) => s.x <= m + 1).at(-1)?.y ?? 0)),
      },
      differences: differences.length,
      firstDifferences: explain(differences),
    };
  } finally {
    await target.stack?.stop();
  }
}
