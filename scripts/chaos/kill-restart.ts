import { describe as explain } from "../../test/ground-truth/invariant.ts";
import { freshStateDir } from "../local-stack.ts";
import { killTree } from "../process-tree.ts";
import { checkAll, deliver, openSession, openTarget, type SendStats } from "./session.ts";

export interface KillRestartReport {
  scenario: "kill-restart";
  seed: number;
  distinctEvents: number;
  copies: number;
  requests: number;
  resent: number;
  resentBecause: Record<string, number>;
  kills: number;
  flushes: number;
  errors: string[];
  differences: number;
  firstDifferences: string;
}

/** Requests in flight at once (Meta and a bridge both send concurrently). */
const CONCURRENCY = 6;

/**
 * Load against a real `wrangler dev` with persisted state; the whole process tree is SIGKILLed
 * `kills` times mid-load (with requests in flight and flushes running) and restarted on the same
 * state; unacknowledged requests are sent again. Then the invariant is checked over HTTP.
 */
export async function killRestart(seed: number, messagesPerClient: number, kills: number): Promise<KillRestartReport> {
  const target = await openTarget(freshStateDir("zapmeter-chaos-"));
  try {
    const session = await openSession(target, seed, messagesPerClient);
    const stats: SendStats = { requests: 0, resent: 0, resentBecause: {}, errors: [] };
    const killAt = Array.from({ length: kills }, (_, i) => Math.floor(((i + 1) * session.deliveries.length) / (kills + 1)));
    let next = 0;
    let killed = 0;
    let flushes = 0;
    let done = false;

    const restart = async () => {
      target.down();
      const pid = target.stack!.process.pid!;
      const exited = new Promise((r) => target.stack!.process.once("exit", r));
      killTree(pid);
      await exited;
      killed += 1;
      await target.start();
    };
    // Flushes run alongside the load, so a kill can land in the middle of one.
    const flusher = (async () => {
      while (!done) {
        await target.ready;
        try {
          const res = await target.api("/v1/admin/flush", { method: "POST", headers: { authorization: `Bearer ${session.token}` } });
          if (res.status === 200) flushes += 1;
          await res.arrayBuffer();
        } catch {
          // the stack is being killed; the next round waits for it
        }
        await new Promise((r) => setTimeout(r, 1_500));
      }
    })();
    const worker = async () => {
      while (next < session.deliveries.length) {
        const i = next++;
        if (killAt.includes(i)) await restart();
        await deliver(target, session, session.deliveries[i]!, stats);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    done = true;
    await flusher;

    const differences = await checkAll(target, session);
    return {
      scenario: "kill-restart",
      seed,
      distinctEvents: session.truth.events.length,
      copies: session.copies,
      requests: stats.requests,
      resent: stats.resent,
      resentBecause: stats.resentBecause,
      kills: killed,
      flushes,
      errors: stats.errors,
      differences: differences.length,
      firstDifferences: explain(differences),
    };
  } finally {
    await target.close();
  }
}
