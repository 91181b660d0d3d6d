import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import type { CrowdCommand, CrowdReport, CrowdSockets } from "./live-crowd.ts";

/**
 * Opens the crowd's sockets (live-crowd.ts), reports when each has had its first message (the
 * snapshot, or its first chunk), then counts messages and bytes as the main thread asks.
 */
const { urls } = workerData as CrowdSockets;
const post = (r: CrowdReport) => parentPort!.postMessage(r);
let closing = false;
let messages = 0;
let bytes = 0;
let closedEarly = 0;
let countingSince = performance.now();
let loop = performance.eventLoopUtilization();

try {
  const sockets = await Promise.all(
    urls.map(
      (url) =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url);
          const timer = setTimeout(() => reject(new Error("no snapshot within 120 s")), 120_000);
          ws.addEventListener("error", () => reject(new Error("a crowd socket failed")), { once: true });
          ws.addEventListener("close", () => !closing && closedEarly++);
          ws.addEventListener("message", (m) => {
            clearTimeout(timer);
            resolve(ws);
            messages++;
            bytes += String(m.data).length;
          });
        }),
    ),
  );
  post({ ready: true });
  parentPort!.on("message", (command: CrowdCommand) => {
    if (command === "count") {
      messages = 0;
      bytes = 0;
      countingSince = performance.now();
      loop = performance.eventLoopUtilization();
    } else if (command === "report") {
      post({ messages, bytes, closedEarly, elapsedMs: performance.now() - countingSince, threadBusy: performance.eventLoopUtilization(loop).utilization });
    } else {
      closing = true;
      for (const ws of sockets) ws.close();
      post({ closed: true });
    }
  });
} catch (err) {
  post({ error: (err as Error).message });
}
