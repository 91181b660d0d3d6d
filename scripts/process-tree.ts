import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

/**
 * Process-tree helpers: `wrangler dev` is a wrapper (bin/wrangler.js) running the CLI that owns the
 * port, which runs workerd; signalling the wrapper alone reaches none of them once it is killed.
 */

interface ProcessInfo {
  ppid: number;
  /** "Z" for a zombie: exited, not yet reaped (by a parent, or an init that may never reap). */
  state: string;
}

/** Every process, from /proc on Linux, from ps elsewhere (a developer's macOS). */
function processes(): Map<number, ProcessInfo> {
  const table = new Map<number, ProcessInfo>();
  if (!existsSync("/proc")) {
    for (const line of execFileSync("ps", ["-A", "-o", "pid=,ppid=,stat="], { encoding: "utf8" }).trim().split("\n")) {
      const [pid, ppid, stat] = line.trim().split(/\s+/);
      table.set(Number(pid), { ppid: Number(ppid), state: stat!.charAt(0) });
    }
    return table;
  }
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(pid, { ppid: Number(ppid), state: state! });
    } catch {
      // exited while listed
    }
  }
  return table;
}

/** Every live descendant of `root` (children first found, then theirs). */
export function descendants(root: number, table = processes()): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) {
    let list = children.get(ppid);
    if (!list) children.set(ppid, (list = []));
    list.push(pid);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Whether `pid` still runs (a zombie does not). */
export function isRunning(pid: number, table = processes()): boolean {
  const state = table.get(pid)?.state;
  return state !== undefined && state !== "Z" && state !== "X";
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/** SIGKILLs `root` and all its descendants at once: no process gets to clean up. */
export function killTree(root: number): number[] {
  const all = [root, ...descendants(root)];
  for (const pid of all) signal(pid, "SIGKILL");
  return all;
}

/**
 * Asks `child` to stop with SIGTERM, SIGKILLs its whole tree if any of it still runs after `graceMs`,
 * and resolves once every process of the tree is gone (its port and its state directory are free).
 */
export async function terminateTree(child: ChildProcess, graceMs: number): Promise<void> {
  // An exited child's pid may be another process's by now.
  if (child.exitCode !== null || child.signalCode !== null) return;
  const tree = new Set([child.pid!, ...descendants(child.pid!)]);
  child.kill("SIGTERM");
  const killAt = Date.now() + graceMs;
  for (;;) {
    const table = processes();
    // Forgotten once gone, so that a reused pid is never signalled.
    for (const pid of tree) if (!isRunning(pid, table)) tree.delete(pid);
    if (tree.size === 0) return;
    if (Date.now() >= killAt) {
      // The CLI's own children too: killing the wrapper first would hand them to init, out of reach.
      for (const pid of [...tree].flatMap((p) => [p, ...descendants(p, table)])) {
        tree.add(pid);
        signal(pid, "SIGKILL");
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
