/**
 * A fresh local stack for one benchmark run: migrated and dev-seeded D1 (scripts/local-stack.ts),
 * plus the benchmark's clients, then `wrangler dev` on a free port.
 */
import "./local-dev-env.ts";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEV_PASSWORD } from "../scripts/demo/catalog.ts";
import { freePort, freshStateDir, prepareLocalState, ROOT, startWrangler, type RunningStack } from "../scripts/local-stack.ts";
import { FLUSH_INTERVAL_MS } from "../durable-objects/lake-schedule.ts";
import { benchClientId, benchPhone } from "./events.ts";

export interface BenchStack {
  /** The Worker's own socket in the workerd process that runs it (see `workerEntry`). */
  url: string;
  /** Admin bearer token. */
  token: string;
  /** The workerd process that runs the Worker and the Durable Objects (for CPU and RSS). */
  workerdPid: number;
  stateDir: string;
  stop(): Promise<void>;
}

/** Clients `bench-00000`… in UTC; the first `withPhones` get a WhatsApp phone number each (multi-row inserts: fast to apply). */
function clientsSql(count: number, withPhones: number, now: number): string {
  const lines: string[] = [];
  for (let from = 0; from < count; from += 500) {
    const ids = Array.from({ length: Math.min(500, count - from) }, (_, k) => from + k);
    lines.push(`INSERT OR IGNORE INTO clients (id, name, timezone, currency, shards, active, created_at) VALUES ${ids.map((i) => `('${benchClientId(i)}', 'Bench ${i}', 'UTC', 'USD', 1, 1, ${now})`).join(", ")};`);
    const phones = ids.filter((i) => i < withPhones);
    if (phones.length > 0) lines.push(`INSERT OR IGNORE INTO phone_numbers (phone_number_id, client_id) VALUES ${phones.map((i) => `('${benchPhone(i)}', '${benchClientId(i)}')`).join(", ")};`);
  }
  return lines.join("\n");
}

/** What `wrangler dev` needs to run the Worker; node_modules is linked, not copied. */
const SNAPSHOT = ["wrangler.toml", ".dev.vars", "package.json", "tsconfig.json", "worker-configuration.d.ts", "workers", "durable-objects", "schema", "migrations"];

/**
 * A copy of the Worker's sources: wrangler dev restarts the Worker whenever a watched file changes,
 * and a benchmark must measure one version of the code while others keep editing the repository.
 */
function snapshot(into: string): void {
  for (const path of SNAPSHOT) {
    if (existsSync(join(ROOT, path))) cpSync(join(ROOT, path), join(into, path), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(into, "node_modules"));
  // The static-assets router sits in front of every request locally (a glob match per request, on
  // the same thread as the Worker); in production /v1/* reaches the Worker first and the router is
  // not Worker CPU. No measured route serves assets, so the benchmark runs without it.
  const config = readFileSync(join(into, "wrangler.toml"), "utf8");
  writeFileSync(join(into, "wrangler.toml"), config.replace(/^\[assets\]\n(?:[^\[\n].*\n)*/m, ""));
}

/** Children of `pid`, recursively, from /proc. */
function descendants(pid: number): { pid: number; comm: string }[] {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return { pid: Number(d), ppid, comm };
      } catch {
        return null;
      }
    })
    .filter((p) => p !== null);
  const out: { pid: number; comm: string }[] = [];
  const walk = (parent: number) => {
    for (const p of all.filter((q) => q.ppid === parent)) {
      out.push(p);
      walk(p.pid);
    }
  };
  walk(pid);
  return out;
}

/** TCP ports `pid` listens on, from its socket inodes and /proc/net/tcp (state 0A = LISTEN). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/)?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // The descriptor closed while we listed them.
    }
  }
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[3] === "0A" && inodes.has(f[9]!))
    .map((f) => parseInt(f[1]!.split(":")[1]!, 16));
}

/**
 * The address of the Worker's entry socket inside the workerd process that runs it. `wrangler dev`
 * puts a second workerd in front (its dev proxy: live reload, request logging), which on these
 * 2-core machines takes about a third of the CPU; production has no such hop, and the goals are
 * stated for one workerd process, so the load goes straight to the Worker's own socket. Of the
 * process's listening ports, it is the one that answers `/health` (the others are the inspector
 * and internal loopbacks).
 */
async function workerEntry(pid: number): Promise<string> {
  for (const port of listeningPorts(pid)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5_000) });
      const body = (await res.json()) as { ok?: boolean };
      if (res.status === 200 && body.ok === true) return `http://127.0.0.1:${port}`;
    } catch {
      // Not an HTTP socket of the Worker.
    }
  }
  throw new Error(`no listening port of workerd ${pid} answers /health`);
}

/**
 * Starts the stack with `clients` benchmark clients (the first `withPhones` reachable by webhook);
 * `inspectorPort` opens wrangler's DevTools endpoint there (bench/profile.ts).
 */
export async function startBenchStack(clients: number, withPhones: number, inspectorPort?: number): Promise<BenchStack> {
  const stateDir = freshStateDir("zapmeter-bench-");
  await prepareLocalState(stateDir);
  const file = join(stateDir, "bench-clients.sql");
  writeFileSync(file, clientsSql(clients, withPhones, Date.now()));
  // Same invocation as prepareLocalState's seed step, with the benchmark's clients.
  execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), "d1", "execute", "DB", "--local", "--file", file, "--persist-to", stateDir], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const code = join(stateDir, "code");
  mkdirSync(code);
  snapshot(code);
  const stack: RunningStack = await startWrangler({ port: await freePort(), persistTo: stateDir, log: process.env.BENCH_VERBOSE ? "inherit" : "ignore", cwd: code, inspectorPort });
  // wrangler dev runs two workerd processes: its proxy on the public port and the one with our Worker.
  const port = new URL(stack.url).port;
  const workerd = descendants(stack.process.pid!).find(
    (p) => p.comm === "workerd" && !readFileSync(`/proc/${p.pid}/cmdline`, "utf8").includes(`entry=127.0.0.1:${port}`),
  );
  if (!workerd) {
    await stack.stop();
    throw new Error("no workerd process under wrangler dev");
  }
  const url = await workerEntry(workerd.pid);
  const res = await fetch(`${url}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "admin@example.com", password: DEV_PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  return {
    url,
    token,
    workerdPid: workerd.pid,
    stateDir,
    async stop() {
      await stack.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of /proc/pid/stat (11 and 12 after the command name), in clock ticks.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** workerd counts as idle below this share of a core. */
const IDLE_CPU_SHARE = 0.05;

/**
 * Waits out the background work a measured window left behind, so it lands in no later window and
 * not in the peer's: each client's flush alarm fires within FLUSH_INTERVAL_MS of its first pending
 * event (even after the harness drained the lake, the alarm still settles the client's rollups with
 * the Overview, a re-check follows a checkpoint later), so wait until then from `since` and then
 * until workerd has been idle for two whole seconds (at most 30 s more). `alongside`, work that times
 * nothing, runs in that wait and is waited for (its failure is its owner's to report). Returns the
 * seconds waited.
 */
export async function waitForQuiet(stack: BenchStack, since: number, alongside?: Promise<unknown>): Promise<number> {
  const start = Date.now();
  await Promise.all([sleep(Math.max(0, since + FLUSH_INTERVAL_MS - Date.now())), alongside?.catch(() => undefined)]);
  await waitForIdle(stack, 30_000);
  return (Date.now() - start) / 1000;
}

/** Local workerd evicts an object this long after its last call. */
export const EVICTED_AFTER_MS = 10_000;
/** Objects idle since the same moment went within ~300 ms of EVICTED_AFTER_MS (2026-12-04). */
const EVICTION_SWEEP_MS = 1_500;

/**
 * Waits until the objects that untimed work last called at `lastCallAt` have been evicted, and
 * workerd is idle again. Evicting many objects at once holds workerd's one thread: the ~900 that
 * the Overview's priming had woken together went in one ~300 ms sweep, which delayed a probe of the
 * window it landed in by as much (docs/bench-history.md, 2026-12-04). Returns the seconds waited.
 */
export async function waitForEvictions(stack: BenchStack, lastCallAt: number): Promise<number> {
  const start = Date.now();
  await sleep(Math.max(0, lastCallAt + EVICTED_AFTER_MS + EVICTION_SWEEP_MS - Date.now()));
  await waitForIdle(stack, 10_000);
  return (Date.now() - start) / 1000;
}

/** Waits until workerd has been idle for two whole seconds, or `maxMs` has passed. */
export async function waitForIdle(stack: BenchStack, maxMs: number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let quiet = 0;
  while (quiet < 2 && Date.now() < deadline) {
    const before = cpuSeconds(stack.workerdPid);
    await sleep(1_000);
    quiet = cpuSeconds(stack.workerdPid) - before < IDLE_CPU_SHARE ? quiet + 1 : 0;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory of the process in MB. */
export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line?.match(/\d+/)?.[0] ?? Number.NaN) / 1024;
}

/** Samples `rssMb(pid)` every `everyMs` until stopped; returns the peak. */
export function rssSampler(pid: number, everyMs = 20): { stop(): number } {
  let peak = rssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssMb(pid));
    },
  };
}
