import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { HelpRequested, USAGE, UsageError, parseBridgeArgs } from "../../scripts/bridge/config.ts";
import { backoffDelay, classify, retryAfterMs } from "../../scripts/bridge/policy.ts";
import { Progress, progressLine, type ProgressSnapshot } from "../../scripts/bridge/progress.ts";
import { bridgeOn, endpoint, event, fresh, runCleanups, until } from "./bridge-harness.ts";

afterEach(runCleanups);

const error = (code: string) => ({ error: { code, message: `${code} happened` } });

describe("what a response from /v1/ingest/events means", () => {
  it("2xx is delivered, with the per-record rejects", () => {
    expect(classify(200, { accepted: 2, duplicates: 1, rejected: [{ index: 3, code: "invalid_event", message: "m" }] })).toEqual({
      kind: "delivered",
      accepted: 2,
      duplicates: 1,
      rejected: [{ index: 3, code: "invalid_event", message: "m" }],
    });
  });

  it.each([408, 425, 429, 500, 502, 503, 504, 507, 508, 520, 521, 522, 523, 524, 525, 526, 530, 599])("%i is retried", (status) => {
    expect(classify(status, error("x")).kind).toBe("retry");
  });

  it.each([400, 409, 415, 422])("%i dead-letters the records", (status) => {
    expect(classify(status, error("invalid_body"))).toEqual({ kind: "dead_letter", status, code: "invalid_body", message: "invalid_body happened" });
  });

  it.each([401, 403, 404, 405, 501, 505])("%i stops the bridge", (status) => {
    expect(classify(status, null)).toMatchObject({ kind: "fatal", status, code: "http_error" });
  });

  it.each([300, 301, 302, 307, 308])("%i stops the bridge saying the URL is wrong", (status) => {
    expect(classify(status, null, { location: "https://zm.example.com/v1/ingest/events" })).toEqual({
      kind: "fatal",
      status,
      code: "redirect",
      message: "the URL is wrong: it redirects to https://zm.example.com/v1/ingest/events; give --url the address it redirects to",
    });
  });

  it.each([
    ["without duplicates", { accepted: 2, rejected: [] }],
    ["without rejected", { accepted: 2, duplicates: 0 }],
    ["without accepted", { duplicates: 0, rejected: [] }],
    ["with rejected that is not a list", { accepted: 2, duplicates: 0, rejected: 0 }],
  ])("a 2xx %s is not the endpoint's answer: it stops the bridge", (_what, body) => {
    expect(classify(200, body)).toMatchObject({ kind: "fatal", status: 200, code: "not_ingest_answer" });
  });

  it("413 splits the batch", () => {
    expect(classify(413, error("too_many_records")).kind).toBe("split");
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    const now = Date.UTC(2026, 10, 22, 5, 0, 0);
    expect(retryAfterMs("3", now)).toBe(3000);
    expect(retryAfterMs(new Date(now + 7000).toUTCString(), now)).toBe(7000);
    // A date already past means now, not a negative wait.
    expect(retryAfterMs(new Date(now - 7000).toUTCString(), now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
    expect(classify(503, error("downstream_unavailable"), { retryAfter: "2" }, now)).toMatchObject({ kind: "retry", delayMs: 2000 });
  });
});

describe("backoff", () => {
  const opts = { baseMs: 100, maxMs: 5000 };
  it("grows exponentially with jitter and is capped", () => {
    expect(backoffDelay(0, null, opts, () => 0)).toBe(50);
    expect(backoffDelay(0, null, opts, () => 1)).toBe(100);
    expect(backoffDelay(3, null, opts, () => 0.5)).toBe(600);
    expect(backoffDelay(30, null, opts, () => 1)).toBe(5000);
  });
  it("takes the server's Retry-After plus up to 20 % when it is longer than the backoff, capped", () => {
    expect(backoffDelay(0, 1500, opts, () => 0)).toBe(1500);
    expect(backoffDelay(0, 1500, opts, () => 0.5)).toBe(1650);
    expect(backoffDelay(0, 1500, opts, () => 1)).toBe(1800);
    expect(backoffDelay(0, 60_000, opts, () => 0)).toBe(5000);
  });
  it("waits the longer of Retry-After and the attempt's backoff: an object that stays overloaded is retried ever more slowly", () => {
    const bridge = { baseMs: 250, maxMs: 30_000 };
    const attempts = [0, 1, 2, 3, 4, 5, 6, 7, 8, 20];
    expect(attempts.map((a) => backoffDelay(a, 2000, bridge, () => 0))).toEqual([2000, 2000, 2000, 2000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
    expect(attempts.map((a) => backoffDelay(a, 2000, bridge, () => 1))).toEqual([2400, 2400, 2400, 2400, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });
  it("backs off, growing, through 503s that say Retry-After: 0 instead of retrying at once for as long as they last", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(({ n }) => (n <= 12 ? { status: 503, headers: { "retry-after": "0" }, body: error("busy") } : { status: 200 }));
    const { delays } = await bridgeOn(kafka, ep.url);
    kafka.produce("wa", [{ key: "acme", value: event("acme") }]);
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(delays).toHaveLength(12);
    // Exponential from 250 ms: the last waits are seconds, not nothing.
    expect(delays.slice(-3).every((d) => d >= 1000)).toBe(true);
  });
  it("backs off, growing past it, through 503s that keep saying Retry-After: 2 (an overloaded object)", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(({ n }) => (n <= 10 ? { status: 503, headers: { "retry-after": "2" }, body: error("downstream_unavailable") } : { status: 200 }));
    const { delays } = await bridgeOn(kafka, ep.url);
    kafka.produce("wa", [{ key: "acme", value: event("acme") }]);
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(delays).toHaveLength(10);
    // Never sooner than the server asked; from the sixth retry on, the backoff (250 ms doubling, half
    // of it jitter) is the longer wait, and the last ones are at its cap's lower half.
    expect(delays.every((d) => d >= 2000)).toBe(true);
    expect(delays.slice(5).every((d) => d > 2400)).toBe(true);
    expect(delays.slice(-3).every((d) => d >= 15_000)).toBe(true);
  });
});

describe("progress", () => {
  it("counts in the lag only the partitions this member still owns", () => {
    const progress = new Progress();
    progress.observe("wa", 0, "10", "0");
    progress.observe("wa", 1, "5", "2");
    expect(progress.snapshot().lag).toBe(13);
    progress.retain([{ topic: "wa", partition: 0 }]);
    expect(progress.snapshot().lag).toBe(10);
  });
});

describe("progress line", () => {
  it("shows events/s, totals and lag", () => {
    const zero: ProgressSnapshot = { delivered: 0, duplicates: 0, deadLettered: 0, posts: 0, retries: 0, commits: 0, lag: 0 };
    const cur = { ...zero, delivered: 900, duplicates: 3, deadLettered: 100, retries: 2, lag: 42 };
    expect(progressLine(zero, cur, 2000)).toBe("bridge: 500 events/s · delivered 900 (3 duplicates) · dead-lettered 100 · retries 2 · lag 42");
  });
});

describe("command line", () => {
  const env = { ZAPMETER_INGEST_KEY: "dev-ingest-key" };
  it("reads brokers, topic, group and defaults", () => {
    const c = parseBridgeArgs(["--brokers", "k1:9092, k2:9092", "--topic", "wa-events", "--group", "zapmeter"], env);
    expect(c).toMatchObject({
      kafka: { brokers: ["k1:9092", "k2:9092"], clientId: "zapmeter-bridge", ssl: false },
      topic: "wa-events",
      group: "zapmeter",
      dlqTopic: "wa-events.dlq",
      endpoint: "http://localhost:8787/v1/ingest/events",
      apiKey: "dev-ingest-key",
      batchSize: 500,
      maxInFlight: 8,
      fromBeginning: true,
    });
  });
  it("starts a group without committed offsets at the earliest offset unless --from-latest", () => {
    const base = ["--brokers", "k:9092", "--topic", "t", "--group", "g"];
    expect(parseBridgeArgs([...base, "--from-latest"], env).fromBeginning).toBe(false);
    expect(parseBridgeArgs([...base, "--from-beginning"], env).fromBeginning).toBe(true);
    expect(() => parseBridgeArgs([...base, "--from-latest", "--from-beginning"], env)).toThrow(UsageError);
  });
  it("takes SASL credentials from the environment only", () => {
    const c = parseBridgeArgs(["--brokers", "k:9092", "--topic", "t", "--group", "g", "--url", "https://zm.example.com", "--ssl"], {
      ...env,
      KAFKA_SASL_MECHANISM: "SCRAM-SHA-512",
      KAFKA_USERNAME: "u",
      KAFKA_PASSWORD: "p",
    });
    expect(c.kafka).toMatchObject({ ssl: true, sasl: { mechanism: "scram-sha-512", username: "u", password: "p" } });
    expect(c.endpoint).toBe("https://zm.example.com/v1/ingest/events");
  });
  it("accepts each numeric option at both ends of its range", () => {
    const base = ["--brokers", "k:9092", "--topic", "t", "--group", "g"];
    const low = ["--batch-size", "1", "--linger-ms", "0", "--max-in-flight", "1", "--concurrency", "1", "--progress-seconds", "0"];
    const high = ["--batch-size", "10000", "--linger-ms", "60000", "--max-in-flight", "256", "--concurrency", "1000", "--progress-seconds", "3600"];
    expect(parseBridgeArgs([...base, ...low], env)).toMatchObject({ batchSize: 1, lingerMs: 0, maxInFlight: 1, concurrency: 1, progressSeconds: 0 });
    expect(parseBridgeArgs([...base, ...high], env)).toMatchObject({ batchSize: 10_000, lingerMs: 60_000, maxInFlight: 256, concurrency: 1000, progressSeconds: 3600 });
  });
  it("never prints a --url it refuses, which may hold a password", () => {
    const base = ["--brokers", "k:9092", "--topic", "t", "--group", "g", "--url"];
    for (const url of ["ftp://user:s3cret@zm.example.com", "https://user:s3cret@zm.example.com", "http://user:s3cret@[zm"]) {
      let refused: unknown = null;
      try {
        parseBridgeArgs([...base, url], env);
      } catch (err) {
        refused = err;
      }
      expect(refused).toBeInstanceOf(UsageError);
      expect((refused as UsageError).message).not.toContain("s3cret");
    }
  });
  it("answers --help before checking anything else", () => {
    expect(() => parseBridgeArgs(["--help"], {})).toThrow(HelpRequested);
  });
  it.each([
    [["--topic", "t", "--group", "g"], env, "--brokers"],
    [["--brokers", "k", "--topic", "t", "--group", "g"], {}, "ZAPMETER_INGEST_KEY"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--batch-size", "20000"], env, "--batch-size"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--max-in-flight", "0"], env, "--max-in-flight"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--bogus"], env, "bogus"],
    [["--brokers", "k", "--topic", "t", "--group", "g"], { ...env, KAFKA_SASL_MECHANISM: "plain", KAFKA_USERNAME: "u" }, "KAFKA_PASSWORD"],
    [["--brokers", ",", "--topic", "t", "--group", "g"], env, "--brokers"],
    // Each dead letter would be read again, refused again and written again, without end.
    [["--brokers", "k", "--topic", "t", "--group", "g", "--dlq-topic", "t"], env, "--dlq-topic"],
    // fetch refuses these two before sending: every request would be retried as a network failure, for ever.
    [["--brokers", "k", "--topic", "t", "--group", "g", "--url", "ftp://zm.example.com"], env, "--url"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--url", "https://user:secret@zm.example.com"], env, "--url"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--url", "https://user@zm.example.com"], env, "--url"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--url", "https://:secret@zm.example.com"], env, "--url"],
    [["--brokers", "k", "--topic", "t", "--group", "g", "--url", "ws://zm.example.com"], env, "--url"],
    [["--brokers", "k", "--topic", "t", "--group", "g"], { ...env, KAFKA_SASL_MECHANISM: "plain", KAFKA_PASSWORD: "p" }, "KAFKA_USERNAME"],
  ])("refuses %j with a readable reason", (argv, e, mention) => {
    expect(() => parseBridgeArgs(argv, e)).toThrow(UsageError);
    expect(() => parseBridgeArgs(argv, e)).toThrow(mention);
  });
});

describe("docs/kafka.md's table of the bridge's options", () => {
  const env = { ZAPMETER_INGEST_KEY: "dev-ingest-key" };
  const doc = readFileSync(new URL("../../docs/kafka.md", import.meta.url), "utf8");
  const table = doc.slice(doc.indexOf("| option | default |"));
  const rows = table
    .slice(0, table.indexOf("\n\n"))
    .split("\n")
    .slice(2)
    .map((l) => l.split("|").map((c) => c.trim()));
  const flagsOf = (text: string) => [...text.matchAll(/--[a-z][a-z-]*/g)].map((m) => m[0]);

  it("names exactly the options the bridge's usage lists", () => {
    expect(rows.length).toBeGreaterThan(10);
    expect(new Set(rows.flatMap((r) => flagsOf(r[1]!)))).toEqual(new Set(flagsOf(USAGE)));
  });

  it("gives each option's default as the parser applies it", () => {
    const c = parseBridgeArgs(["--brokers", "k:9092", "--topic", "wa-events", "--group", "g"], env);
    const applied: Record<string, string> = {
      "--url": "`$ZAPMETER_URL` or `http://localhost:8787`",
      "--dlq-topic": c.dlqTopic === "wa-events.dlq" ? "`<topic>.dlq`" : c.dlqTopic,
      "--batch-size": String(c.batchSize),
      "--linger-ms": String(c.lingerMs),
      "--max-in-flight": String(c.maxInFlight),
      "--concurrency": String(c.concurrency),
      "--from-latest": c.fromBeginning ? "off" : "on",
      "--progress-seconds": String(c.progressSeconds),
      "--ssl": `${c.kafka.ssl ? "on" : "off"}, \`${c.kafka.clientId}\``,
    };
    expect(c.endpoint).toBe("http://localhost:8787/v1/ingest/events");
    const documented = Object.fromEntries(rows.map((r) => [flagsOf(r[1]!)[0]!, r[2]!]));
    for (const [flag, value] of Object.entries(applied)) expect([flag, documented[flag]]).toEqual([flag, value]);
  });
});
