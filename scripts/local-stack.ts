import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { seedSql } from "./demo/seed-sql.ts";
import { terminateTree } from "./process-tree.ts";

/**
 * Per-request lines of successful requests, the Worker's sampled access log and wrangler's own:
 * noise on a developer's console. The Worker's lines of failed (4xx/5xx) and slow requests stay.
 */
const ACCESS_LOG = /"event":"request".*"status":[123]\d\d,"ms":\d{1,3}\}|^\S*\[wrangler:info\]\S* (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /;

/** Repository root (scripts/..). */
export const ROOT = resolve(import.meta.dirname, "..");
const WRANGLER_JS = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
/** Children run on this Node (22, from the node@22 devDependency) even when started outside npm. */
export const CHILD_ENV = {
  ...process.env,
  PATH: [dirname(process.execPath), join(ROOT, "node_modules", ".bin"), process.env.PATH].join(delimiter),
  WRANGLER_SEND_METRICS: "false",
  // The Worker reads nothing of `request.cf`; miniflare fetching it from workers.cloudflare.com on
  // every start and reload printed a stack trace offline (and can wait 3 s for it).
  CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
};

/** Local secrets: `.dev.vars` from the documented dev values when absent. */
export function ensureDevVars(): void {
  const target = join(ROOT, ".dev.vars");
  if (!existsSync(target)) copyFileSync(join(ROOT, ".dev.vars.example"), target);
}

function wrangler(args: string[], persistTo?: string): void {
  execFileSync(process.execPath, [WRANGLER_JS, ...args, ...(persistTo ? ["--persist-to", persistTo] : [])], {
    cwd: ROOT,
    env: CHILD_ENV,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Applies D1 migrations and the idempotent dev seed to the local state in `persistTo` (default: .wrangler/state). */
export async function prepareLocalState(persistTo?: string): Promise<void> {
  ensureDevVars();
  wrangler(["d1", "migrations", "apply", "DB", "--local"], persistTo);
  executeLocalSql(await seedSql(), persistTo);
}

/** Runs SQL statements against the local D1 in `persistTo` (also while `wrangler dev` serves it). */
export function executeLocalSql(sql: string, persistTo?: string): void {
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-sql-"));
  const file = join(dir, "run.sql");
  writeFileSync(file, sql);
  try {
    wrangler(["d1", "execute", "DB", "--local", "--file", file], persistTo);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A fresh directory for local state (tests, benchmarks). */
export function freshStateDir(prefix = "zapmeter-state-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Fails, saying so, when something listens on `port` already. */
export function assertPortFree(port: number): Promise<void> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once("error", (err: NodeJS.ErrnoException) =>
      fail(err.code === "EADDRINUSE" ? new Error(`port ${port} is in use (another npm start?); stop it or choose another with PORT=`) : err),
    );
    srv.listen(port, "127.0.0.1", () => srv.close(() => done()));
  });
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

export interface RunningStack {
  url: string;
  process: ChildProcess;
  /** Resolves once every process of wrangler dev is gone, not just its wrapper: the port is free then. */
  stop(): Promise<void>;
}

/**
 * Starts `wrangler dev` (Worker, Durable Objects, local D1/R2, static dashboard) and resolves once
 * /health answers 200. Output goes to `log` (default: inherit; "quiet" drops the per-request lines).
 * `cwd` (default: the repository) is where wrangler finds wrangler.toml and watches sources.
 * Aborting `signal` while it starts stops wrangler dev, then rejects with the signal's reason.
 */
export async function startWrangler(opts: {
  port: number;
  persistTo?: string;
  log?: "inherit" | "ignore" | "quiet";
  vars?: Record<string, string>;
  cwd?: string;
  /** wrangler's DevTools endpoint (bench/profile.ts); a random port when absent. */
  inspectorPort?: number;
  signal?: AbortSignal;
}): Promise<RunningStack> {
  ensureDevVars();
  // Else /health below could be answered by whatever already serves the port (another npm start).
  await assertPortFree(opts.port);
  opts.signal?.throwIfAborted();
  const args = ["dev", "--port", String(opts.port), "--ip", "127.0.0.1", "--show-interactive-dev-session=false", "--inspector-port", String(opts.inspectorPort ?? 0)];
  if (opts.persistTo) args.push("--persist-to", opts.persistTo);
  // wrangler.toml says production; a local stack runs the dev secrets unless a caller says otherwise.
  for (const [k, v] of Object.entries({ ENVIRONMENT: "development", ...opts.vars })) args.push("--var", `${k}:${v}`);
  const output = opts.log === "quiet" ? "pipe" : (opts.log ?? "inherit");
  const child = spawn(process.execPath, [WRANGLER_JS, ...args], { cwd: opts.cwd ?? ROOT, env: CHILD_ENV, stdio: ["ignore", output, output], detached: false });
  if (opts.log === "quiet") {
    for (const [stream, sink] of [[child.stdout, process.stdout], [child.stderr, process.stderr]] as const) {
      createInterface({ input: stream! }).on("line", (line) => {
        if (!ACCESS_LOG.test(line)) sink.write(`${line}\n`);
      });
    }
  }
  // The wrapper forwards SIGTERM to the CLI; a CLI still running 5 s later is killed with its workerd.
  const stop = () => terminateTree(child, 5_000);
  const url = `http://127.0.0.1:${opts.port}`;
  let exited = false;
  child.once("exit", () => (exited = true));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const up = await healthy(url);
    if (opts.signal?.aborted) {
      await stop();
      opts.signal.throwIfAborted();
    }
    if (up) return { url, process: child, stop };
    if (exited) throw new Error(`wrangler dev exited early with code ${child.exitCode}`);
    if (Date.now() >= deadline) {
      await stop();
      throw new Error("wrangler dev did not become healthy within 120 s");
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/health`)).status === 200;
  } catch {
    return false; // not listening yet
  }
}
