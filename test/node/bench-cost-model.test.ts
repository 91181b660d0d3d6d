import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { costModel, FLUSHES_PER_SENDING_MINUTE, LEVERS, PRICES, SCENARIOS, scenarioFromFlags, type Measured, type Scenario } from "../../bench/cost-model.ts";
import { BROADCAST_INTERVAL_MS } from "../../durable-objects/broadcast-interval.ts";
import { FLUSH_INTERVAL_MS, FLUSH_SPREAD_MS } from "../../durable-objects/lake-schedule.ts";
import { percentile, ratio } from "../../bench/stats.ts";
import { benchBatch, webhookSize } from "../../bench/events.ts";
import { workload } from "../../bench/ingest.ts";
import { requestEvents } from "../../bench/load.ts";

const measured: Measured = {
  webhook: { events_per_request: 5, rows_written_per_event: 2.3, background_rows_written_per_event: 0.3, rows_read_per_event: 4, do_calls_per_event: 0.2, workerd_cpu_ms_per_request: 5 },
  webhook_single: { events_per_request: 1, rows_written_per_event: 2.1, background_rows_written_per_event: 0.05, rows_read_per_event: 4, do_calls_per_event: 1, workerd_cpu_ms_per_request: 2 },
  bridged: { events_per_request: 1_000, rows_written_per_event: 1.3, background_rows_written_per_event: 0.05, rows_read_per_event: 3, do_calls_per_event: 0.001, workerd_cpu_ms_per_request: 20 },
  parquet_bytes_per_event: 4,
};
const base: Scenario = { ...SCENARIOS[0]!, messagesPerDay: 1e6, activeClients: 10, activeHoursPerDay: 10, flushesPerClientMinute: 1 };

describe("cost model", () => {
  it("prices each line from the measured counts and the scenario", () => {
    const bill = costModel(measured, base);
    // 3 M webhook events in 600 k requests and 1 M bridged events in 1,000 requests, 30.4 days.
    expect(bill.monthly["Workers requests"]).toBeCloseTo(((601_000 / 1e6) * PRICES.workerRequestsPerM) * 30.4, 2);
    // Measured mix: the rows per event the calls wrote (2 webhook, 1.25 bridged); the flushes that landed in the run are priced on the flush line.
    expect(bill.monthly["DO rows written: ingest"]).toBeCloseTo(((3e6 * 2 + 1e6 * 1.25) / 1e6) * 30.4, 2);
    // 10 clients × 10 h × 60 flushes a day, each with 6 mark/table rows, the scenario's counter rows
    // and two alarms set (each billed as a row written).
    expect(bill.monthly["DO rows written: flush"]).toBeCloseTo(((6_000 * (6 + base.counterRowsPerFlush + 2)) / 1e6) * 30.4, 2);
    // The Overview writes a sending client's row once per 5 s checkpoint, not per 1 s rollup.
    expect(bill.monthly["DO rows written: overview rollups"]).toBeCloseTo(((10 * 10 * 3_600) / 5 / 1e6) * 30.4, 2);
    // The watched tenth's calls, 100 ms each (their broadcast timer), 10 ms per call (601,000) and per
    // flush-alarm request (4 × 6,000), and the scenario's four Overview shards all day, 0.128 GB each.
    const awakeSeconds = 0.1 * 601_000 * 0.1 + (601_000 + 24_000) * 0.01 + 4 * 86_400;
    expect(bill.monthly["DO duration (awake objects)"]).toBeCloseTo((awakeSeconds * 0.128 / 1e6) * PRICES.doGbSecondsPerM * 30.4, 2);
    // One Overview request per ingest call (relayed, so an upper bound).
    expect(bill.monthly["DO requests: overview rollups"]).toBeCloseTo((601_000 / 1e6) * PRICES.doRequestsPerM * 30.4, 2);
    // Three shards forwarding to the top twenty times a second (50 ms apart) over the 10 sending hours; none with one shard.
    expect(bill.monthly["DO requests: overview forwards"]).toBeCloseTo(((3 * 20 * 10 * 3_600) / 1e6) * PRICES.doRequestsPerM * 30.4, 2);
    expect(costModel(measured, { ...base, overviewShards: 1 }).monthly["DO requests: overview forwards"]).toBe(0);
    const total = Object.values(bill.monthly).reduce((a, b) => a + b, 0);
    expect(bill.usd_per_million_messages).toBeCloseTo(total / 30.4, 2);
  });

  it("bills a watched client's object for its broadcast timer after each call, at most for all the time it sends", () => {
    const duration = (s: Scenario) => costModel(measured, s).monthly["DO duration (awake objects)"]!;
    const unwatched = duration({ ...base, watchedShare: 0 });
    // Each line is rounded to the cent, so two of them differ by up to a cent more.
    const gbSecondsUsd = (seconds: number) => ((seconds * 0.128) / 1e6) * PRICES.doGbSecondsPerM * 30.4;
    // Half of the 601,000 calls a day are watched clients', each holding its object 100 ms longer.
    expect(duration({ ...base, watchedShare: 0.5 }) - unwatched).toBeCloseTo(gbSecondsUsd(0.5 * 601_000 * 0.1), 1);
    // Calls closer together than the timer keep the object awake all the time its client sends
    // (10 clients × 10 h), never longer.
    expect(duration({ ...base, watchedShare: 0.5, watchedAwakeMsPerCall: 2_000 }) - unwatched).toBeCloseTo(gbSecondsUsd(0.5 * 10 * 10 * 3_600), 1);
    expect(SCENARIOS[0]!.watchedAwakeMsPerCall).toBe(BROADCAST_INTERVAL_MS);
  });

  it("flushes a sending client as often as its object's share of the flush spread makes it, 1.22 times a minute on average", () => {
    // Every share of FLUSH_SPREAD_MS an object id can take, each flushing 60 s ÷ its delay a minute.
    const delays = Array.from({ length: FLUSH_SPREAD_MS }, (_, share) => FLUSH_INTERVAL_MS - share);
    const mean = delays.reduce((n, d) => n + 60_000 / d, 0) / delays.length;
    expect(FLUSHES_PER_SENDING_MINUTE).toBeCloseTo(mean, 4);
    expect(SCENARIOS[0]!.flushesPerClientMinute).toBe(FLUSHES_PER_SENDING_MINUTE);
  });

  it("prices webhooks of one status each from that workload's own counts", () => {
    const one = costModel(measured, { ...base, webhookWorkload: "webhook_single" });
    // 3 M webhook events in as many requests and calls, 2.05 rows written and 2 ms of CPU each.
    expect(one.monthly["DO rows written: ingest"]).toBeCloseTo(((3e6 * 2.05 + 1e6 * 1.25) / 1e6) * 30.4, 2);
    expect(one.monthly["Workers requests"]).toBeCloseTo(((3_001_000 / 1e6) * PRICES.workerRequestsPerM) * 30.4, 2);
    expect(one.monthly["Workers CPU"]).toBeCloseTo(((3e6 * 2 + 1_000 * 20) / 1e6) * PRICES.workerCpuMsPerM * 30.4, 2);
    expect(one.monthly["DO requests: ingest"]).toBeCloseTo(((3e6 + 1_000) / 1e6) * PRICES.doRequestsPerM * 30.4, 2);
    expect(one.usd_per_million_messages).toBeGreaterThan(costModel(measured, base).usd_per_million_messages);
  });

  it("prices Workers Logs by the GB: the access-log sample, and an execution log per invocation only when those are on", () => {
    // 4,840 B an event (Cloudflare's average for Workers), $0.25 a GB ingested and $0.10 a GB-month
    // for the 7 days it stays queryable (7 ÷ 30 of a GB-month), since 2026-12-01.
    const usdPerEvent = (4_840 / 1e9) * (0.25 + (0.1 * 7) / 30);
    // 601,000 Worker requests a day, 1 % of them logged.
    expect(costModel(measured, base).monthly["Workers Logs"]).toBeCloseTo(6_010 * usdPerEvent * 30.4, 2);
    // Plus every request, every ingest call and its rollup relay (601,000 each), four per flush alarm
    // (6,000), and the three lower Overview shards' forwards, 20 a second over the 10 sending hours.
    const withExecutionLogs = costModel(measured, { ...base, invocationLogs: true });
    expect(withExecutionLogs.monthly["Workers Logs"]).toBeCloseTo((6_010 + 601_000 * 3 + 24_000 + 3 * 20 * 36_000) * usdPerEvent * 30.4, 2);
    expect(withExecutionLogs.monthly["Workers Logs"]).toBeCloseTo(160.59, 2);
  });

  it("uses Cloudflare's list prices (Workers Paid, read 2026-12)", () => {
    expect(PRICES).toEqual({
      workerRequestsPerM: 0.3,
      workerCpuMsPerM: 0.02,
      doRequestsPerM: 0.15,
      doGbSecondsPerM: 12.5,
      doRowsWrittenPerM: 1,
      doRowsReadPerM: 0.001,
      doStorageGbMonth: 0.2,
      r2ClassAPerM: 4.5,
      r2ClassBPerM: 0.36,
      r2StorageGbMonth: 0.015,
      d1RowsWrittenPerM: 1,
      d1RowsReadPerM: 0.001,
      logsIngestGb: 0.25,
      logsStorageGbMonth: 0.1,
    });
  });

  it("prices every line in dollars worked out by hand", () => {
    // 100 M messages a day from 10,000 clients sending 10 h, one flush a client-minute (6 M a day).
    const big = costModel(measured, { ...base, messagesPerDay: 1e8, activeClients: 10_000, billingLinesPerClientDay: 6, billingRecomputeDays: 8 });
    const cents = Object.fromEntries(Object.entries(big.monthly).map(([line, usd]) => [line, Math.round(usd * 100) / 100]));
    expect(cents).toMatchObject({
      // 60 M webhook requests of 5 ms and 100,000 bridged of 20 ms: 302 M CPU-ms, $0.02 a million.
      "Workers CPU": 183.62,
      "Workers requests": 548.11,
      // 60.1 M calls a day; 1.5 G rows read (3 × 4 per webhook event, 1 × 3 per bridged one).
      "DO requests: ingest": 274.06,
      "DO rows read: ingest": 45.6,
      // 400 M events × 76 days × 100 B = 3,040 GB at $0.20; 400 M × 4 B × 400 days = 640 GB at $0.015;
      // each a GB-month for every 30 days, 30.4 of them a month.
      "DO storage (event rows, ~76 d)": 616.11,
      "R2 storage (lake, 400 d)": 9.73,
      // 6 M flush PUTs, 10,000 compaction PUTs and 80,000 lists (8 days a client); 6 M compaction GETs; 4 requests a flush.
      "R2 class A (flush puts + daily compaction)": 833.11,
      "R2 class B (compaction reads)": 65.66,
      "DO requests: flush alarms": 109.44,
      // 14 rows a flush: 6 marks and tables, 6 counter rows, 2 alarms.
      "DO rows written: flush": 2_553.6,
      // 10,000 clients × 6 lines × 8 days recomputed, each written and read.
      "D1 rows (billing)": 14.61,
      // 601,000 s watched (100 ms after each of the watched tenth's 60.1 M calls), 841,000 s busy
      // (10 ms × 84.1 M calls and alarm requests), 4 shards all day: × 0.128 GB.
      "DO duration (awake objects)": 86.95,
    });
  });

  it("prices the logging and the Overview shards wrangler.toml deploys", () => {
    const toml = readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8");
    expect(Number(JSON.parse(tomlValue(toml, "vars", "ACCESS_LOG_SAMPLE_RATE")))).toBe(SCENARIOS[0]!.accessLogSampleRate);
    expect(tomlValue(toml, "observability.logs", "invocation_logs")).toBe(String(SCENARIOS[0]!.invocationLogs));
    expect(Number(JSON.parse(tomlValue(toml, "vars", "OVERVIEW_SHARDS")))).toBe(SCENARIOS[0]!.overviewShards);
    // Logs must not keep live tickets or download signatures.
    expect(tomlValue(toml, "observability", "redact_query_string")).toBe("true");
  });

  it("refuses a scenario whose webhook workload the results do not hold", () => {
    const { webhook_single: _, ...older } = measured;
    expect(() => costModel(older, { ...base, webhookWorkload: "webhook_single" })).toThrow(/no webhook_single workload/);
  });

  it("has levers that each lower the bill, except the worst case, the rollup timer of before 2026-11-30 and execution logs", () => {
    const asBuilt = costModel(measured, SCENARIOS[0]!).monthly_total_usd;
    for (const l of LEVERS.slice(1)) {
      const total = costModel(measured, { ...SCENARIOS[0]!, ...l.change }).monthly_total_usd;
      if (l.change.webhookWorkload === "webhook_single" || l.change.watchedShare === 1 || l.change.invocationLogs) expect(total).toBeGreaterThan(asBuilt);
      else expect(total).toBeLessThan(asBuilt);
    }
  });
});

describe("a scenario of your own traffic", () => {
  it("changes only what the flags name, on the 100 M/day scenario", () => {
    const s = scenarioFromFlags({ "messages-per-day": "3e7", clients: "500", webhooks: "single" })!;
    expect(s).toEqual({ ...SCENARIOS[0]!, name: "30 M messages/day, 500 clients", messagesPerDay: 3e7, activeClients: 500, webhookWorkload: "webhook_single" });
    expect(costModel(measured, s).monthly_total_usd).toBeLessThan(costModel(measured, { ...s, messagesPerDay: 1e8 }).monthly_total_usd);
  });

  it("is null without flags and refuses values that price nothing", () => {
    expect(scenarioFromFlags({})).toBeNull();
    expect(() => scenarioFromFlags({ clients: "0" })).toThrow(/--clients must be a positive whole number/);
    expect(() => scenarioFromFlags({ hours: "25" })).toThrow(/--hours must be in \(0, 24\]/);
    expect(() => scenarioFromFlags({ watched: "-0.1" })).toThrow(/--watched/);
    expect(() => scenarioFromFlags({ webhooks: "some" })).toThrow(/mix or single/);
    expect(scenarioFromFlags({ watched: "0" })!.watchedShare).toBe(0);
  });
});

describe("bench helpers", () => {
  it("generates the same events for every consumer and unique ids", () => {
    const a = benchBatch("r", 7, 0, 3_000, 1_763_700_000_000);
    expect(benchBatch("r", 7, 0, 3_000, 1_763_700_000_000)).toEqual(a);
    expect(new Set(a.map((e) => e.event_id)).size).toBe(3_000);
    expect(a.slice(0, 3).map((e) => e.status)).toEqual(["sent", "delivered", "read"]);
  });

  it("sizes webhooks from 1 to 10 statuses", () => {
    const sizes = Array.from({ length: 1_000 }, (_, i) => webhookSize(i));
    expect(Math.min(...sizes)).toBe(1);
    expect(Math.max(...sizes)).toBe(10);
  });

  it("gives each workload's requests their size: 1,000 bridged, the 1–10 mix, one status", () => {
    const sizes = (name: "bridged" | "webhook" | "webhook_single") => {
      const plan = { ...workload(name, { run: "r", durationMs: 1, maxRequests: 1 }), baseUrl: "", ingestKey: "", appSecret: "", t0: 0 };
      const next = new Map<number, number>();
      return Array.from({ length: 20 }, (_, i) => requestEvents(plan, i, next).length);
    };
    expect(new Set(sizes("bridged"))).toEqual(new Set([1_000]));
    expect(sizes("webhook")).toEqual(Array.from({ length: 20 }, (_, i) => webhookSize(i)));
    expect(new Set(sizes("webhook_single"))).toEqual(new Set([1]));
  });

  it("takes nearest-rank percentiles and refuses ratios without a peer", () => {
    expect(percentile([5, 1, 4, 2, 3], 0.5)).toBe(3);
    expect(percentile([1, 2, 3, 4, 100], 0.99)).toBe(100);
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(3, 4)).toBe(0.75);
  });
});

/** The raw value of `key` in wrangler.toml's `[section]` (the file's own simple form: one key per line). */
function tomlValue(toml: string, section: string, key: string): string {
  const body = toml.split(/^\[/m).find((part) => part.startsWith(`${section}]`));
  const value = body?.match(new RegExp(`^${key}\\s*=\\s*(.+?)\\s*$`, "m"))?.[1];
  if (value === undefined) throw new Error(`wrangler.toml has no ${key} in [${section}]`);
  return value;
}
