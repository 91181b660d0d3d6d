import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { runDemoTraffic } from "../../scripts/demo/traffic.ts";

/**
 * `npm start`'s demo traffic retries what a sender of the real kind retries (no answer, 429, 5xx), so
 * a stack that reloads or restarts loses none of it, and reports each request once, with its outcome.
 */
describe("demo traffic", () => {
  it("sends a request again after a 503 and reports only its final answer", async () => {
    const refused: string[] = [];
    const stored: string[] = [];
    const refusedPaths = new Set<string>();
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk));
      req.on("end", () => {
        // The first request of each endpoint is refused, as by a stack in the middle of a reload.
        const status = refusedPaths.has(req.url!) ? 200 : 503;
        refusedPaths.add(req.url!);
        (status === 200 ? stored : refused).push(body);
        res.writeHead(status, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const results: { path: string; status: number }[] = [];
    const stop = new AbortController();
    const traffic = runDemoTraffic({
      baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      appSecret: "dev-app-secret",
      ingestKey: "dev-ingest-key",
      messagesPerSecond: 40,
      signal: stop.signal,
      onResult: (r) => results.push(r),
    });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    stop.abort();
    await traffic;
    expect(refused).toHaveLength(2);
    // The refused requests came again, the same bytes (same signature, same event ids), and were stored.
    for (const body of refused) expect(stored).toContain(body);
    expect(new Set(results.map((r) => r.path))).toEqual(new Set(["/v1/webhooks/whatsapp", "/v1/ingest/events"]));
    expect(results.every((r) => r.status === 200)).toBe(true);
  }, 15_000);
});
