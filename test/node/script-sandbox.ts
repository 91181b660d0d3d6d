import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isRunning } from "../../scripts/process-tree.ts";

/**
 * A copy of the repository's scripts (and what they import) in a temp dir, for tests that run them as
 * processes. Its node_modules has the real packages but two: wrangler is its REAL bin wrapper
 * (bin/wrangler.js, which runs wrangler-dist/cli.js as its child and forwards SIGINT/SIGTERM) in
 * front of a FAKE cli.js, and vite a fake that writes an index.html. The fake `wrangler d1 …` exits 0;
 * `wrangler dev` writes its pid to $FAKE_PID_FILE and serves on --port: /health answers 503 for
 * $FAKE_HEALTH_DELAY_MS, then 200; with $FAKE_SIG_LOG, each webhook's X-Hub-Signature-256 is checked
 * against $FAKE_APP_SECRET (the value wrangler would bind) and "ok" or "bad" appended there; with
 * FAKE_IGNORE_TERM=1 it ignores SIGTERM (a dev server slow to shut down). Nothing here runs the real
 * wrangler dev, binds port 8787 or writes into the repository.
 */
const REPO = resolve(import.meta.dirname, "../..");
/** Node 22 (the node@22 devDependency), which runs the scripts as they are (type stripping). */
export const NODE = join(REPO, "node_modules", ".bin", "node");

const FAKE_CLI = `
const http = require("http"); const fs = require("fs");
const args = process.argv.slice(2);
if (args[0] !== "dev") process.exit(0);
const port = Number(args[args.indexOf("--port") + 1]);
fs.writeFileSync(process.env.FAKE_PID_FILE, String(process.pid));
const readyAt = Date.now() + Number(process.env.FAKE_HEALTH_DELAY_MS || 0);
http.createServer((req, res) => {
  if (req.url === "/v1/webhooks/whatsapp" && process.env.FAKE_SIG_LOG) {
    const chunks = []; req.on("data", (c) => chunks.push(c)); req.on("end", () => {
      const expected = "sha256=" + require("crypto").createHmac("sha256", process.env.FAKE_APP_SECRET).update(Buffer.concat(chunks)).digest("hex");
      const ok = req.headers["x-hub-signature-256"] === expected;
      fs.appendFileSync(process.env.FAKE_SIG_LOG, (ok ? "ok" : "bad") + "\\n");
      res.writeHead(ok ? 200 : 401); res.end();
    });
    return;
  }
  if (req.url.startsWith("/health") && Date.now() < readyAt) { res.writeHead(503); return res.end("starting"); }
  res.writeHead(200); res.end("ok");
}).listen(port, "127.0.0.1");
if (process.env.FAKE_IGNORE_TERM === "1") process.on("SIGTERM", () => {});
`;
const FAKE_VITE = `
const fs = require("fs"); const path = require("path");
const a = process.argv; const out = a[a.lastIndexOf("--outDir") + 1];
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, "index.html"), "<!doctype html>");
fs.writeFileSync(path.join(out, "_headers"), "/*\\n");
`;

/** A fresh sandbox directory (removed by `cleanup`). */
export function sandbox(): string {
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-scripts-sandbox-"));
  for (const d of ["scripts", "schema", "workers", "durable-objects", "test/ground-truth"]) cpSync(join(REPO, d), join(dir, d), { recursive: true });
  for (const f of ["package.json", "wrangler.toml", ".dev.vars.example"]) cpSync(join(REPO, f), join(dir, f));
  const modules = join(dir, "node_modules");
  mkdirSync(modules);
  for (const name of readdirSync(join(REPO, "node_modules"))) {
    if (!["wrangler", "vite", ".bin"].includes(name)) symlinkSync(join(REPO, "node_modules", name), join(modules, name));
  }
  fake(join(modules, "wrangler"), { "bin/wrangler.js": readFileSync(join(REPO, "node_modules", "wrangler", "bin", "wrangler.js"), "utf8"), "wrangler-dist/cli.js": FAKE_CLI });
  fake(join(modules, "vite"), { "bin/vite.js": FAKE_VITE });
  return dir;
}

function fake(packageDir: string, files: Record<string, string>): void {
  mkdirSync(packageDir);
  writeFileSync(join(packageDir, "package.json"), JSON.stringify({ name: packageDir.split("/").at(-1) }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(packageDir, path, ".."), { recursive: true });
    writeFileSync(join(packageDir, path), text);
  }
}

/** Polls `cond` every 50 ms for up to `ms`; its last answer. */
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(50);
  }
  return cond();
}

/** The pid a process wrote to `file`, null before it did. */
export function readPid(file: string): number | null {
  const text = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  return text ? Number(text) : null;
}

/** SIGKILLs what a test left running and removes the sandbox. */
export function cleanup(dir: string, pids: (number | null | undefined)[]): void {
  for (const pid of pids) {
    if (pid && isRunning(pid)) process.kill(pid, "SIGKILL");
  }
  rmSync(dir, { recursive: true, force: true });
}
