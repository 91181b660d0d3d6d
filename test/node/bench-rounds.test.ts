import { describe, expect, it } from "vitest";
import { FLUSH_INTERVAL_MS, FLUSH_SPREAD_MS } from "../../durable-objects/lake-schedule.ts";
import { endsBeforeAlarms, ingestFigures, msBeforeAlarms, workload, type IngestRound } from "../../bench/ingest.ts";
import type { LoadResult } from "../../bench/load.ts";
import { peerFigures } from "../../bench/postgres.ts";
import { latencyFigures } from "../../bench/ws-latency.ts";

const load = (o: Partial<LoadResult>): LoadResult => ({
  requests: 0, events: 0, accepted: 0, duplicates: 0, failures: {}, latenciesMs: [], elapsedMs: 0,
  doCalls: 0, rowsWritten: 0, backgroundRowsWritten: 0, rowsRead: 0, loadThreadBusy: 0, ...o,
});

describe("benchmark rounds are pooled, not averaged", () => {
  const o = workload("webhook", { run: "t", durationMs: 10_000, maxRequests: 1e6 });

  it("takes rates and per-event counts as sums over sums across rounds", () => {
    // A fast round of 10 s and a slow one of 30 s: the mean of the rates (2,000 and 1,000) would say
    // 1,500; the pooled rate is 50,000 events in 40 s.
    const rounds: IngestRound[] = [
      { load: load({ requests: 4_000, events: 20_000, accepted: 20_000, elapsedMs: 10_000, rowsWritten: 24_000, doCalls: 4_000, latenciesMs: [1, 2], loadThreadBusy: 0.4, failures: { 503: 1 } }), cpuSeconds: 8 },
      { load: load({ requests: 6_000, events: 30_000, accepted: 29_000, duplicates: 1_000, elapsedMs: 30_000, rowsWritten: 33_000, doCalls: 6_000, latenciesMs: [3, 4, 100], loadThreadBusy: 0.2, failures: { 503: 2, 500: 1 } }), cpuSeconds: 12 },
    ];
    const f = ingestFigures(o, rounds);
    expect(f.events_per_s).toBe(Math.round(49_000 / 40));
    expect(f.requests).toBe(10_000);
    expect(f.events_per_request).toBe(5);
    expect(f.rows_written_per_event).toBe(round4(57_000 / 50_000));
    expect(f.do_calls_per_event).toBe(0.2);
    expect(f.workerd_cpu_ms_per_request).toBe(2);
    expect(f.load_thread_busy).toBe(0.25);
    expect(f.failures).toEqual({ 503: 3, 500: 1 });
    expect(f.request_p99_ms).toBe(100);
    expect(f.elapsed_s).toBe(40);
  });

  it("pools the peer's rounds the same way", () => {
    const f = peerFigures([
      { accepted: 10_000, elapsedMs: 1_000, latenciesMs: [5, 6] },
      { accepted: 10_000, elapsedMs: 4_000, latenciesMs: [7] },
    ]);
    expect(f).toMatchObject({ requests: 3, accepted: 20_000, events_per_s: 4_000, elapsed_s: 5, batch_p50_ms: 6, batch_p99_ms: 7 });
  });

  it("takes latency percentiles over every probe of every window", () => {
    const f = latencyFigures([
      { probes: 3, early: 1, latenciesMs: [10, 20] },
      { probes: 2, early: 0, latenciesMs: [300, 30] },
    ]);
    expect(f).toEqual({ probes: 5, seen: 4, before_response: 1, p50_ms: 20, p99_ms: 300, max_ms: 300 });
  });
});

describe("a round's second window", () => {
  const firstAlarm = FLUSH_INTERVAL_MS - FLUSH_SPREAD_MS;

  it("runs when it ends 3 s before the first flush alarm the round's writes can have armed", () => {
    expect(endsBeforeAlarms(firstAlarm - 13_000, 10_000, 0)).toBe(true);
    expect(endsBeforeAlarms(firstAlarm - 12_999, 10_000, 0)).toBe(false);
  });

  it("always runs when nothing was written yet", () => {
    expect(endsBeforeAlarms(10 * FLUSH_INTERVAL_MS, 10_000, null)).toBe(true);
    expect(msBeforeAlarms(10 * FLUSH_INTERVAL_MS, null)).toBe(Infinity);
  });

  it("has, as room for a shorter window, what is left before that margin", () => {
    expect(msBeforeAlarms(firstAlarm - 13_000, 0)).toBe(10_000);
    expect(msBeforeAlarms(firstAlarm - 12_999, 5)).toBe(10_004);
    expect(msBeforeAlarms(firstAlarm, 0)).toBe(-3_000);
  });
});

function round4(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}
