import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { drive, type LoadPlan } from "../../bench/load.ts";
import { median } from "../../bench/stats.ts";

describe("the load generator", () => {
  it("stops by itself when a request is never answered, counting it as failed", async () => {
    let n = 0;
    const sockets = new Set<Socket>();
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        // The third request hangs, as a call to a stuck object would.
        if (++n === 3) return;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ accepted: 1, duplicates: 0 }));
      });
    });
    server.on("connection", (s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const plan: LoadPlan = {
        kind: "bridged", baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ingestKey: "k", appSecret: "s", run: "hang", t0: 0,
        clients: [0, 1], batchSize: 1, concurrency: 2, durationMs: 300, maxRequests: 1_000_000,
      };
      const result = await drive(plan);
      expect(result.failures).toEqual({ TimeoutError: 1 });
      expect(result.accepted).toBeGreaterThan(2);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  }, 20_000);
});

describe("the median of bench:ab's and bench:growth's rounds", () => {
  it("is the middle value, or the mean of the two middle ones", () => {
    expect(median([3000, 1000, 2000, 4000])).toBe(2500);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([])).toBeNaN();
  });
});
