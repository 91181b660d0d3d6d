/**
 * `npm run bench:ab -- <treeA> <treeB> [webhook|webhook_single|bridged] [--seconds N] [--rounds N] [--clients N]`:
 * ingest throughput of two source trees (say a `git worktree` of main and your working copy, each
 * with `node_modules` linked in) on two stacks side by side, in alternating bursts (A B, B A, …), so
 * the machine's drift over minutes hits both alike. One full run of each a few minutes apart cannot
 * tell a 10 % change from this machine's ±30 % swings; this can. Prints every burst and the medians
 * as JSON. Each tree's own bench/ code starts its stack and drives it.
 */
import { resolve } from "node:path";
import { HELP, commandLine } from "../scripts/command-line.ts";
import { workload, workloadClients, workloadKind, workloadName } from "./ingest.ts";
import { waitForQuiet } from "./stack.ts";
import { median, ratio } from "./stats.ts";

const { values, positionals, fail } = commandLine(
  {
    allowPositionals: true,
    options: { ...HELP, seconds: { type: "string", default: "15" }, rounds: { type: "string", default: "4" }, clients: { type: "string" } },
  },
  "usage: npm run bench:ab -- <treeA> <treeB> [webhook|webhook_single|bridged] [--seconds N (15)] [--rounds N (4)] [--clients N]",
);
const [treeA, treeB, named] = positionals;
if (!treeA || !treeB) throw fail("two source trees are needed");
const chosen = workloadName(named, "webhook");
const clients = Number(values.clients ?? workloadClients(chosen));
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
if (!(clients > 0) || !(seconds > 0) || !(rounds > 0)) fail("--seconds, --rounds and --clients must be positive numbers");

type StackModule = typeof import("./stack.ts");
type IngestModule = typeof import("./ingest.ts");
type LakeModule = typeof import("./lake.ts");

async function side(name: "A" | "B", tree: string) {
  const stackModule = (await import(resolve(tree, "bench/stack.ts"))) as StackModule;
  const ingestModule = (await import(resolve(tree, "bench/ingest.ts"))) as IngestModule;
  const lakeModule = (await import(resolve(tree, "bench/lake.ts"))) as LakeModule;
  const stack = await stackModule.startBenchStack(clients, workloadKind(chosen) === "webhook" ? clients : 0);
  const eventsPerS: number[] = [];
  const cpuMsPerRequest: number[] = [];
  return {
    name,
    stack,
    eventsPerS,
    cpuMsPerRequest,
    async burst(round: number) {
      // The workload comes from this harness, the stack and the load from the tree's own bench/.
      const burstStart = Date.now();
      const plan = workload(chosen, { run: `ab-${name}-${round}-${Date.now()}`, clients, durationMs: seconds * 1_000, maxRequests: 10_000_000 });
      const f = await ingestModule.benchIngest(stack, plan);
      eventsPerS.push(f.events_per_s);
      cpuMsPerRequest.push(f.workerd_cpu_ms_per_request);
      // The burst's lake backlog is flushed now and its alarms are waited out: neither may run during
      // the next burst of either stack.
      const lakeDrainS = await lakeModule.drainLake(stack, plan.clients);
      await waitForQuiet(stack, burstStart);
      console.log(JSON.stringify({ side: name, round, events_per_s: f.events_per_s, workerd_cpu_ms_per_request: f.workerd_cpu_ms_per_request, load_thread_busy: f.load_thread_busy, lake_drain_s: lakeDrainS, failures: f.failures }));
    },
  };
}

const a = await side("A", treeA);
const b = await side("B", treeB).catch(async (err: unknown) => {
  await a.stack.stop();
  throw err;
});
try {
  for (let round = 0; round < rounds; round++) {
    for (const s of round % 2 === 0 ? [a, b] : [b, a]) await s.burst(round);
  }
  console.log(
    JSON.stringify({
      workload: chosen,
      rounds,
      seconds,
      A: { events_per_s: median(a.eventsPerS), workerd_cpu_ms_per_request: median(a.cpuMsPerRequest) },
      B: { events_per_s: median(b.eventsPerS), workerd_cpu_ms_per_request: median(b.cpuMsPerRequest) },
      pairs_events_per_s_b_over_a: b.eventsPerS.map((x, i) => ratio(x, a.eventsPerS[i])),
    }),
  );
} finally {
  await a.stack.stop();
  await b.stack.stop();
}
