/**
 * `npm run bench:profile -- [webhook|webhook_single|bridged|lake [webhook]] [--seconds N] [--clients N]`: one ingest
 * workload of the benchmark under V8's sampling profiler, on the workerd process that runs the Worker
 * and the objects; `lake` runs the bridged workload (`lake webhook`: the webhook one) unprofiled and
 * profiles the flush of its lake backlog to R2 as Parquet. Writes
 * `bench/results/profile-<workload>.cpuprofile` (open it in Chrome DevTools or speedscope) and prints
 * the functions with the largest shares of the samples, self and on the stack.
 *
 * The profiler is reached through wrangler's DevTools endpoint: wrangler already holds workerd's own
 * inspector connection and proxies one session to it. The endpoint only admits DevTools origins,
 * hence the `Origin` header.
 */
import { HELP, commandLine } from "../scripts/command-line.ts";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../scripts/local-stack.ts";
import { ingestFigures, ingestRound, warmUp, workload, workloadClients, workloadKind, workloadName } from "./ingest.ts";
import { drainLake } from "./lake.ts";
import { EVICTED_AFTER_MS, startBenchStack } from "./stack.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const DEVTOOLS_ORIGIN = "http://localhost";
const SAMPLING_INTERVAL_US = 200;
const TOP = 25;
const EVICTED_AFTER_S = EVICTED_AFTER_MS / 1_000;

const { values, positionals, fail } = commandLine(
  { allowPositionals: true, options: { ...HELP, seconds: { type: "string", default: "10" }, clients: { type: "string" } } },
  "usage: npm run bench:profile -- [webhook|webhook_single|bridged | lake [bridged|webhook]] [--seconds N (10)] [--clients N]",
);
const profiled = positionals[0] === "lake" ? "lake" : workloadName(positionals[0], "webhook");
// `lake` profiles the backlog of the bridged workload unless told `lake webhook` (many small flushes).
const kind = profiled === "lake" ? workloadName(positionals[1], "bridged") : profiled;
const seconds = Number(values.seconds);
const clients = Number(values.clients ?? workloadClients(kind));
if (!(seconds > 0) || !(clients > 0)) fail("--seconds and --clients must be positive numbers");

/** A DevTools protocol session over one WebSocket. */
async function devtools(inspectorPort: number): Promise<{ send<T>(method: string, params?: object): Promise<T>; close(): void }> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`, { headers: { origin: DEVTOOLS_ORIGIN } })).json()) as { webSocketDebuggerUrl: string }[];
  if (!targets[0]) throw new Error("wrangler's DevTools endpoint lists no target");
  // Node's WebSocket (undici) takes request headers in its options object.
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { origin: DEVTOOLS_ORIGIN } } as unknown as string[]);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error("DevTools WebSocket failed")), { once: true });
  });
  let nextId = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.addEventListener("message", (m) => {
    const msg = JSON.parse(String(m.data)) as { id?: number; result?: unknown };
    if (msg.id === undefined) return;
    pending.get(msg.id)?.(msg.result);
    pending.delete(msg.id);
  });
  return {
    send<T>(method: string, params: object = {}) {
      const id = ++nextId;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise<T>((resolve) => pending.set(id, resolve as (r: unknown) => void));
    },
    close: () => ws.close(),
  };
}

/**
 * Shares of the samples per function: self (the sampled frame) and total (anywhere on the stack). The
 * shares are of samples, as DevTools' bottom-up view counts them, not of the time deltas between them:
 * workerd's samples come 0.2–6 ms apart (the long gaps around idle and native work), so weighting each
 * sample by the gap before it charged whatever ran first after an idle stretch (an ingest call's first
 * SQLite statement showed 10.6 % instead of its 6.7 % of the samples).
 */
function summarise(p: Profile): { samples: number; sampledMs: number; self: [string, number][]; total: [string, number][] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.split("/").slice(-2).join("/")}:${n.callFrame.lineNumber + 1}`;
  const hits = new Map<number, number>();
  for (const id of p.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, n] of hits) {
    const key = name(byId.get(id)!);
    self.set(key, (self.get(key) ?? 0) + n);
    const onStack = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) onStack.add(name(byId.get(at)!));
    for (const k of onStack) total.set(k, (total.get(k) ?? 0) + n);
  }
  const share = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([k, n]) => [k, n / p.samples.length] as [string, number]);
  const sampledUs = p.timeDeltas.reduce((a, d) => a + d, 0);
  return { samples: p.samples.length, sampledMs: sampledUs / 1000, self: share(self), total: share(total) };
}

const inspectorPort = await freePort();
const stack = await startBenchStack(clients, workloadKind(kind) === "webhook" ? clients : 0, inspectorPort);
try {
  const loaded = workload(kind, { run: `profile-${Date.now()}`, clients, durationMs: seconds * 1_000, maxRequests: 10_000_000 });
  // Objects start (tables, state loads) in the warm-up laps, outside the profile: a busy
  // deployment's objects are warm. The window follows the laps at once, as in `npm run bench`.
  await warmUp(stack, loaded);
  const session = await devtools(inspectorPort);
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
  const window = async () => ingestFigures(loaded, [await ingestRound(stack, loaded)]);
  let figures: object;
  let warmth = "objects already warm";
  if (profiled === "lake") {
    const ingest = await window();
    await session.send("Profiler.start");
    figures = { ingest, lake_drain_s: await drainLake(stack, loaded.clients) };
  } else {
    await session.send("Profiler.start");
    const ingest = await window();
    figures = ingest;
    // Under the profiler everything is slower: at too few requests a second per client, each client
    // waits past the eviction between its calls and the profile is of object start-ups.
    const requestsPerS = ingest.requests / ingest.elapsed_s;
    const secondsBetweenCalls = clients / requestsPerS;
    if (secondsBetweenCalls > EVICTED_AFTER_S) {
      const warmClients = Math.max(1, Math.floor(requestsPerS * EVICTED_AFTER_S * 0.5));
      warmth = `NOT of warm objects: each client was called every ${secondsBetweenCalls.toFixed(0)} s, past workerd's ${EVICTED_AFTER_S} s eviction, so calls started their objects; try --clients ${warmClients}`;
    }
  }
  const { profile } = await session.send<{ profile: Profile }>("Profiler.stop");
  session.close();
  const file = join(import.meta.dirname, "results", `profile-${profiled}.cpuprofile`);
  writeFileSync(file, JSON.stringify(profile));
  const s = summarise(profile);
  const pct = (share: number) => `${(100 * share).toFixed(1).padStart(5)} %`;
  console.log(JSON.stringify(figures));
  console.log(`\nprofile: ${file} (${s.samples} samples over ${Math.round(s.sampledMs)} ms, ${warmth})\n\nself (share of samples):`);
  for (const [k, share] of s.self) console.log(`${pct(share)}  ${k}`);
  console.log("\non the stack (share of samples):");
  for (const [k, share] of s.total) console.log(`${pct(share)}  ${k}`);
} finally {
  await stack.stop();
}
