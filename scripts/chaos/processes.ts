import { readFileSync } from "node:fs";
import { descendants } from "../process-tree.ts";

/** The chaos runner's view of a stack's processes: its memory is the workerd child's. */

function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return null;
  }
}

/**
 * The workerd processes under a `wrangler dev`: wrangler runs two, its proxy on the public port and
 * the runtime that executes the Worker and its Durable Objects (whose entry socket is port 0).
 */
export function workerdPids(wranglerPid: number, publicPort: number): { runtime: number | null; proxy: number | null } {
  const all = descendants(wranglerPid).filter((p) => commOf(p) === "workerd");
  const isProxy = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(`entry=127.0.0.1:${publicPort}`);
    } catch {
      return false;
    }
  };
  return { runtime: all.find((p) => !isProxy(p)) ?? null, proxy: all.find(isProxy) ?? null };
}

/** Resident memory of `pid` in MiB: anonymous (heaps) and file-backed (mapped files), null when it is gone. */
export function rssMiB(pid: number): { total: number; anon: number; file: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
    return { total: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile") + kb("RssShmem") };
  } catch {
    return null;
  }
}

/** Least-squares slope of `y` over `x`. */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}
