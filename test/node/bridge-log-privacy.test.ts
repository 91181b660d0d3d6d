import { setImmediate as tick } from "node:timers/promises";
import { afterEach, describe, expect, it, vi } from "vitest";
import { httpPoster } from "../../scripts/bridge/ingest-client.ts";
import { startBridge } from "../../scripts/bridge/run.ts";
import { type Answer, cleanups, endpoint, event, fresh, runCleanups, until } from "./bridge-harness.ts";

/**
 * "Recipient numbers are never logged" (DESIGN.md, Security), for the bridge: records holding one
 * recipient go through rejections, a 400, a 413 split, 503 retries with a dropped connection, values
 * that are not JSON, a dead-letter topic that fails, (a refused commit and a fatal answer print only kafkajs' and the server's messages: core.ts). Nothing the
 * bridge prints (stderr, its print hook) may carry the number.
 */
afterEach(runCleanups);

describe("the bridge's output", () => {
  it("never carries a record's recipient", async () => {
    const recipient = `55119000${String(Math.floor(Math.random() * 1e5)).padStart(5, "0")}`;
    const out: string[] = [];
    const spies = (["log", "info", "warn", "error", "debug"] as const).map((l) =>
      vi.spyOn(console, l).mockImplementation((...a: unknown[]) => void out.push(a.map(String).join(" "))),
    );
    try {
      const kafka = fresh(1);
      const script: Answer[] = [
        { status: 503, body: { error: { code: "downstream_unavailable", message: "retry" } } },
        { status: 0, drop: true },
        { status: 200, body: { accepted: 0, duplicates: 0, rejected: [{ index: 0, code: "invalid_event", message: "recipient: E.164 phone number" }] } },
        { status: 413, body: { error: { code: "payload_too_large", message: "too big" } } },
        { status: 400, body: { error: { code: "malformed", message: "not valid JSON at position 3" } } },
        { status: 400, body: { error: { code: "malformed", message: "not valid JSON at position 3" } } },
        { status: 400, body: { error: { code: "malformed", message: "not valid JSON at position 3" } } },
      ];
      let n = 0;
      const ep = await endpoint(() => script[n++] ?? { status: 200 });
      const dlq = kafka.deadLetters("wa.dlq");
      dlq.failures = 2;
      const consumer = kafka.consumer({ group: "g", topic: "wa" });
      const running = await startBridge(consumer, { post: httpPoster(ep.url, "k"), deadLetters: dlq, lingerMs: 5, sleep: () => tick() }, { progressSeconds: 0, print: (l) => out.push(l) });
      cleanups.push(() => running.stop());
      kafka.produce("wa", [
        { key: "acme", value: event("acme", { recipient }) },
        { key: "acme", value: `{"recipient":"${recipient}", not json` },
        { key: "acme", value: event("acme", { recipient, occurred_at: "x" }) },
        { key: "acme", value: event("acme", { recipient }) },
      ]);
      await until("committed", () => kafka.group("g", "wa").lag() === 0);
      expect(kafka.messages("wa.dlq").length).toBeGreaterThan(0);
      expect(out).toEqual(expect.arrayContaining([expect.stringContaining("dead-letter topic unavailable"), expect.stringContaining("retrying")]));
      expect(out.filter((l) => l.includes(recipient) || l.includes(recipient.slice(4)))).toEqual([]);
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });
});
