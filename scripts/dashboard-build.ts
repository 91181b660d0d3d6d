/**
 * `npm run build [-- vite's options]`: the dashboard, built by vite into a fresh folder beside its
 * destination (`pages/dist`, or `--outDir`'s folder under `pages/`), then moved in file by file: the
 * hashed assets first, `_headers` and `index.html` after them, the files the new build no longer
 * has last; a file the build left as it was is not touched.
 *
 * Why not vite's own emptying of the folder: `npm start`'s wrangler dev serves pages/dist and reloads
 * when it changes. A build that empties the folder before writing it can be read in between, and
 * wrangler sometimes kept that empty reading: every dashboard page answered 404 until a restart
 * (seen 2026-12-02 with demo traffic running, one rebuild in three). Moved in this order, the folder
 * is a whole dashboard at every moment, the old one or the new one.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { CHILD_ENV, ROOT } from "./local-stack.ts";

const PAGES = join(ROOT, "pages");
/** The files that name the others (the page and its headers): moved after everything they name. */
const ENTRY_FILES = ["_headers", "index.html"];

/** Builds the dashboard into `pages/<outDir>` (`dist` unless `viteArgs` has `--outDir`). */
export function buildPages(viteArgs: readonly string[] = []): void {
  const { outDir, rest } = takeOutDir(viteArgs);
  const target = resolve(PAGES, outDir);
  mkdirSync(dirname(target), { recursive: true });
  // Beside the target, so that each move is a rename on one file system.
  const staging = mkdtempSync(join(dirname(target), `.${basename(target)}-build-`));
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, "node_modules", "vite", "bin", "vite.js"), "build", "--config", "pages/vite.config.ts", "--logLevel", "warn", ...rest, "--outDir", staging, "--emptyOutDir"],
      { cwd: ROOT, env: CHILD_ENV, stdio: "inherit" },
    );
    publishBuild(staging, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Moves the build in `from` into `to` (see the module's comment for the order) and returns the files
 * moved and removed, in the order it moved and removed them.
 */
export function publishBuild(from: string, to: string): { moved: string[]; removed: string[] } {
  const built = filesUnder(from);
  const order = [...built.filter((f) => !ENTRY_FILES.includes(f)), ...ENTRY_FILES.filter((f) => built.includes(f))];
  const moved: string[] = [];
  for (const file of order) {
    const source = join(from, file);
    const destination = join(to, file);
    if (existsSync(destination) && readFileSync(source).equals(readFileSync(destination))) continue;
    mkdirSync(dirname(destination), { recursive: true });
    renameSync(source, destination);
    moved.push(file);
  }
  const kept = new Set(built);
  const removed = existsSync(to) ? filesUnder(to).filter((f) => !kept.has(f)) : [];
  for (const file of removed) rmSync(join(to, file));
  return { moved, removed };
}

/** Paths (relative to `dir`, `/`-separated) of the files under `dir`. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)).split("\\").join("/"))
    .sort();
}

/** vite's `--outDir X` / `--outDir=X` taken out of `args` (this script places the output itself). */
function takeOutDir(args: readonly string[]): { outDir: string; rest: string[] } {
  let outDir = "dist";
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--outDir") outDir = args[++i] ?? outDir;
    else if (arg.startsWith("--outDir=")) outDir = arg.slice("--outDir=".length);
    else rest.push(arg);
  }
  return { outDir, rest };
}

if (import.meta.filename === process.argv[1]) buildPages(process.argv.slice(2));
