/**
 * `npm run bench [-- --quick]`: starts a fresh local stack, measures every part against its peer on
 * the same events, writes bench/results/latest.json and prints a summary. Parts that fail are
 * reported as errors in the results, never replaced by numbers.
 */
import "./local-dev-env.ts";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { commandLine, HELP } from "../scripts/command-line.ts";
import { ROOT } from "../scripts/local-stack.ts";
import { DAY_MS } from "../schema/time.ts";
import { stopWithParent } from "../scripts/parent-watch.ts";
import { benchBilling } from "./billing.ts";
import { costModel, SCENARIOS, type Measured } from "./cost-model.ts";
import { endsBeforeAlarms, ingestFigures, msBeforeAlarms, ingestRound, warmUp, workload, type IngestFigures, type IngestOptions, type IngestRound, type WorkloadName } from "./ingest.ts";
import { signInCrowd, type Crowd, type CrowdFigures, type SignedInCrowd } from "./live-crowd.ts";
import { HOT_SHARDS, benchHotClient, type HotClientResult } from "./hot-client.ts";
import { benchCompaction, benchExport, benchParquet, drainLake } from "./lake.ts";
import { peerFigures, postgresRound, resetPeer, startPostgres, type PeerCluster, type PeerRound } from "./postgres.ts";
import { startBenchStack, waitForEvictions, waitForIdle, waitForQuiet } from "./stack.ts";
import { printSummary } from "./summary.ts";
import { latencyFigures, primeOverview, probeLiveLatency, type LatencySample } from "./ws-latency.ts";
import { ratio, round } from "./stats.ts";

const { values: options } = commandLine({ options: { ...HELP, quick: { type: "boolean" } } }, "usage: npm run bench [-- --quick]  (--quick: a short version of every part, in under 5 minutes)");
const quick = options.quick === true;
/**
 * Billing is measured over 5,000 clients (2,000 quick) and scaled to 10,000: it fans out over clients
 * linearly, and one local workerd keeps every object's SQLite files open, so 10,000 objects exceed
 * the 20,000 open files these machines allow (SQLITE_CANTOPEN).
 */
const SIZE = quick
  ? { ingestMs: 8_000, exportRows: 200_000, parquetRows: 24_000, clients: 2_000, compactionFiles: 100 }
  : { ingestMs: 30_000, exportRows: 1_000_000, parquetRows: 24_000, clients: 5_000, compactionFiles: 1_000 };
/**
 * Rows per small file of the compaction part. A client that sends through its 840 active minutes
 * flushes 1.22 times a minute (docs/capacity.md): ~1,000 small files a day, which the full run
 * compacts and the quick run a tenth of.
 */
const COMPACTION_ROWS_PER_FILE = 150;
/**
 * Each ingest workload runs in this many windows (ingestMs in all), each followed at once by the
 * PostgreSQL peer on the very requests of that window. This machine's speed drifts by ±30 % over
 * minutes: with the peer measured minutes after zapmeter, the ratio moved as much between two runs
 * of the same code (0.91 and 1.20 bridged on 2026-11-30) as any change could move it.
 */
const ROUNDS = quick ? 1 : 3;
/**
 * `--quick`: a round's later window that would meet the round's flush alarms runs shorter, down to
 * this, where a full run waits the alarms out and warms up again (over a minute). The webhook
 * part's warm-up takes over ~20 s when this machine is at its slowest, and that wait made such
 * `--quick` runs 6–7 minutes long.
 */
const SHORTEST_QUICK_WINDOW_MS = 4_000;
/** Client indices: 0..999 take the load (webhook phones), then one client per single-client part. */
const PROBE_BRIDGED = 1_000;
const PROBE_WEBHOOK = 1_001;
/**
 * Probes go faster than the client's update throttle (100 ms, durable-objects/client-live.ts), so most
 * wait for its next slot: the figure is that of a client with steady traffic, the throttle's worst
 * case. (One probe per 200 ms against a 200 ms throttle found it idle every time: each went out at once.)
 */
const PROBE_INTERVAL_MS = 50;
const PARQUET_CLIENT = 1_002;
const EXPORT_CLIENT = 1_003;
const COMPACTION_CLIENT = 1_009;
/**
 * The client the overview's probes go to. Not on overview-0 with wrangler.toml's 4 Overview shards
 * (FNV-1a of `bench-01008` mod 4 is 1), so its row reaches the overview through a forward: the
 * longer way, which three clients in four take.
 */
const PROBE_OVERVIEW = 1_008;
/**
 * The overview's crowd: a viewer user for each of 100 webhook clients (each sees only that client)
 * with 10 sockets open on the overview, while webhooks go to those clients 200 a second (~1,100
 * events/s): each client then changes every half second or so, and each change is sent to its 10
 * viewers. Clients 100–199: the seed-rate part's bridged load writes to 0–99. Its windows are 8 s in
 * both modes: the window with the crowd, its sockets closing and the window with one viewer must all
 * end before the warm-up's flush alarms can fire (FLUSH_INTERVAL_MS − FLUSH_SPREAD_MS = 40 s).
 */
const CROWD = { clients: Array.from({ length: 100 }, (_, i) => 100 + i), socketsPerUser: 10, requestsPerSecond: 200, windowMs: 8_000 };

/** Load events happen at noon (UTC) yesterday, so the billing run of yesterday prices them. */
const yesterday = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS);
const T0 = yesterday.getTime() + 12 * 3_600_000;
const RUN = `r${Date.now().toString(36)}`;

const results: Record<string, unknown> = {
  started_at: new Date().toISOString(),
  quick,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  stack: "wrangler dev on a snapshot of the working tree, without the static-assets router and the local explorer/observability tooling; load goes to the Worker's own socket in its workerd process, not through wrangler's dev proxy (bench/stack.ts)",
  commit: execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim(),
};
const errors: Record<string, string> = {};

async function part<T>(name: string, fn: () => Promise<T>): Promise<T | null> {
  const t = performance.now();
  process.stdout.write(`bench: ${name}… `);
  try {
    const r = await fn();
    console.log(`${round((performance.now() - t) / 1000, 1)} s`);
    return r;
  } catch (err) {
    console.log(`FAILED: ${(err as Error).message}`);
    errors[name] = (err as Error).stack ?? String(err);
    return null;
  }
}

const workloads: Record<WorkloadName, IngestOptions> = {
  bridged: workload("bridged", { run: `${RUN}-b`, durationMs: SIZE.ingestMs / ROUNDS, maxRequests: 1_000_000 }),
  webhook: workload("webhook", { run: `${RUN}-w`, durationMs: SIZE.ingestMs / ROUNDS, maxRequests: 10_000_000 }),
  webhook_single: workload("webhook_single", { run: `${RUN}-1`, durationMs: SIZE.ingestMs / ROUNDS, maxRequests: 10_000_000 }),
};

const PEER = "postgresql peer";
/** The peer's window on the requests zapmeter just served; null (and an error in the results) if it failed. */
async function peerRound(cluster: PeerCluster, o: IngestOptions, requests: number): Promise<PeerRound | null> {
  try {
    return await postgresRound(cluster.url, { ...o, baseUrl: "", ingestKey: "", appSecret: "", t0: T0, maxRequests: requests, durationMs: 600_000 });
  } catch (err) {
    errors[PEER] = (err as Error).stack ?? String(err);
    return null;
  }
}

/**
 * One window; `own_warm_up` when it did not follow the previous window of its round directly (the
 * round's alarms were waited out and the objects warmed up again); `window_s` its length, shorter
 * than the workload's in a `--quick` run where the round's alarms were near.
 */
type RoundFigures = { events_per_s: number; workerd_cpu_ms_per_request: number; peer_events_per_s: number | null; ratio: number | null; own_warm_up: boolean; window_s: number };
type IngestResult = IngestFigures & { ws_latency: unknown; lake_drain_s: number; quiet_wait_s: number; rounds: RoundFigures[] };
/**
 * The ingest parts. A round warms a part's clients up, runs a window of each of its workloads on
 * the same warm objects, writes the windows' lake backlog, waits out their alarms, and then runs the
 * PostgreSQL peer on each window's requests. The 1-status webhooks share the webhook workload's
 * 1,000 clients: waiting out a round's alarms takes at least FLUSH_INTERVAL_MS, so a round of its
 * own would add over a minute per round.
 */
const PARTS: { workloads: WorkloadName[]; probeClient: number }[] = [
  { workloads: ["bridged"], probeClient: PROBE_BRIDGED },
  { workloads: ["webhook", "webhook_single"], probeClient: PROBE_WEBHOOK },
];
const STACK = `stack (fresh state, ${SIZE.clients.toLocaleString("en-US")} clients)`;
const stack = await part(STACK, () => startBenchStack(SIZE.clients, 1_000));
if (!stack) throw new Error(`the local stack did not start:\n${errors[STACK]}`);
const peerCluster = await part(`${PEER} (start)`, async () => {
  const pg = await startPostgres();
  if ("missing" in pg) throw new Error(pg.missing);
  return pg;
});
// A run stopped by Ctrl-C, or by `kill` of npm (which does not signal this process), leaves no stack or PostgreSQL behind.
// The cluster stops first and synchronously, the stack's stop signals wrangler at once: the parts
// still running fail against them, and may end this process before the stack's exit is seen.
const interrupted = () => {
  peerCluster?.stop();
  void stack.stop().finally(() => process.exit(130));
};
process.once("SIGINT", interrupted);
process.once("SIGTERM", interrupted);
stopWithParent(interrupted);
const ingest: Partial<Record<WorkloadName, IngestResult>> = {};
const peer: Record<string, unknown> = {};
try {
  // Untimed one-offs run in the ingest parts' alarm waits, when the stack's one thread is otherwise
  // idle, or where a part needs them if that never came: the crowd's sign-ups and sign-ins (a PBKDF2
  // hash each) in the first, and the Overview's priming, which wakes every client's object it never
  // heard from, in the last. The objects the priming woke are then waited out until evicted, as
  // their eviction holds the thread for a few hundred ms (docs/bench-history.md, harness changes of
  // 2026-12-04), and the seed-rate part wakes the Overview shards again before its window.
  let crowdUsers: Promise<SignedInCrowd> | undefined;
  const signInCrowdOnce = () => (crowdUsers ??= signInCrowd(stack, { clients: CROWD.clients, socketsPerUser: CROWD.socketsPerUser }));
  let overviewPriming: Promise<{ seconds: number; endedAt: number }> | undefined;
  const primeOverviewOnce = () => (overviewPriming ??= primeOverview(stack, PROBE_OVERVIEW).then((seconds) => ({ seconds, endedAt: Date.now() })));
  const untimedOneOff = (partIndex: number, round: number) =>
    round === 0 && partIndex === 0 ? signInCrowdOnce : round === ROUNDS - 1 && partIndex === PARTS.length - 1 ? primeOverviewOnce : undefined;
  for (const [partIndex, { workloads: names, probeClient }] of PARTS.entries()) {
    await part(`ingest ${names.join(" + ")} + live latency, ${ROUNDS} round(s) each followed by the ${PEER}`, async () => {
      const ours = new Map(names.map((n) => [n, [] as IngestRound[]]));
      const probes = new Map(names.map((n) => [n, [] as LatencySample[]]));
      const theirs = new Map(names.map((n) => [n, [] as PeerRound[]]));
      const rounds = new Map(names.map((n) => [n, [] as RoundFigures[]]));
      const windowOf = (name: WorkloadName, i: number): IngestOptions => ({ ...workloads[name], run: `${workloads[name].run}${i}` });
      const clients = [...new Set([...names.flatMap((n) => workloads[n].clients), probeClient])];
      let drained = 0;
      let waited = 0;
      let roundStart = 0;
      // The part's workloads share one warm-up run: after the first, its events are duplicates.
      // Returns when the warm-up's writes armed flush alarms, or null when it wrote nothing.
      const warm = async (name: WorkloadName): Promise<number | null> => {
        roundStart = Date.now();
        return (await warmUp(stack, workloads[name], workloads[names[0]!].run)) > 0 ? roundStart : null;
      };
      // The windows' lake backlog is written now, and their alarms have fired before the peer or the
      // next window runs: either would otherwise share the thread with them.
      const settle = async (alongside?: () => Promise<unknown>) => {
        drained += await drainLake(stack, clients);
        waited += await waitForQuiet(stack, roundStart, alongside?.());
      };
      if (peerCluster) await resetPeer(peerCluster.url);
      for (let i = 0; i < ROUNDS; i++) {
        // When the round's first write armed its objects' flush alarms (null: not yet).
        let firstWriteAt = await warm(names[0]!);
        const served: { name: WorkloadName; o: IngestOptions; ourRound: IngestRound; ownWarmUp: boolean }[] = [];
        for (const name of names) {
          let o = windowOf(name, i);
          let ownWarmUp = served.length === 0;
          const room = msBeforeAlarms(Date.now(), firstWriteAt);
          if (!ownWarmUp && room < o.durationMs) {
            if (quick && room >= SHORTEST_QUICK_WINDOW_MS) {
              o = { ...o, durationMs: Math.floor(room) };
            } else {
              // The round's alarms could fire during this window: wait them out and warm up again first.
              await settle();
              firstWriteAt = await warm(name);
              ownWarmUp = true;
            }
          }
          firstWriteAt ??= Date.now();
          // Probes only while the window's load runs: latency under that load, not under the warm-up's.
          let done = false;
          const probe = probeLiveLatency(stack, { client: probeClient, run: `${RUN}-p${name}${i}`, intervalMs: PROBE_INTERVAL_MS, maxProbes: 10_000, until: () => done });
          const ourRound = await ingestRound(stack, o).finally(() => (done = true));
          ours.get(name)!.push(ourRound);
          probes.get(name)!.push(await probe);
          served.push({ name, o, ourRound, ownWarmUp });
        }
        const oneOff = untimedOneOff(partIndex, i);
        await settle(oneOff);
        if (oneOff === primeOverviewOnce) waited += await waitForEvictions(stack, (await primeOverviewOnce()).endedAt);
        for (const { name, o, ourRound, ownWarmUp } of served) {
          const theirRound = peerCluster && !errors[PEER] ? await peerRound(peerCluster, o, ourRound.load.requests) : null;
          if (theirRound) theirs.get(name)!.push(theirRound);
          const { events_per_s, workerd_cpu_ms_per_request } = ingestFigures(o, [ourRound]);
          const peerRate = theirRound ? peerFigures([theirRound]).events_per_s : null;
          rounds.get(name)!.push({ events_per_s, workerd_cpu_ms_per_request, peer_events_per_s: peerRate, ratio: ratio(events_per_s, peerRate), own_warm_up: ownWarmUp, window_s: round(o.durationMs / 1000, 1) });
        }
      }
      for (const name of names) {
        // Drain and wait times are the part's, shared by its workloads' windows.
        ingest[name] = { ...ingestFigures(workloads[name], ours.get(name)!), ws_latency: latencyFigures(probes.get(name)!), lake_drain_s: round(drained, 3), quiet_wait_s: round(waited, 1), rounds: rounds.get(name)! };
        if (theirs.get(name)!.length === ROUNDS) peer[name] = peerFigures(theirs.get(name)!);
      }
    });
  }
  results.ingest = ingest;
  // The same probes at the seed target's average rate (3,500 events/s as bridged batches), where the
  // thread is not saturated: what a dashboard sees on a normal day rather than under a flood.
  results.live_at_seed_rate = await part("live latency at 3,500 events/s", async () => {
    const o: IngestOptions = { ...workloads.bridged, run: `${RUN}-s`, durationMs: SIZE.ingestMs, requestsPerSecond: 3.5, concurrency: 4 };
    const overviewPrimingS = (await primeOverviewOnce()).seconds;
    // Shards evicted since the priming start now, not in the window.
    const overviewWakeS = await primeOverview(stack, PROBE_OVERVIEW);
    await warmUp(stack, o);
    let done = false;
    const probe = probeLiveLatency(stack, { client: PROBE_BRIDGED, run: `${RUN}-s`, intervalMs: PROBE_INTERVAL_MS, maxProbes: 10_000, until: () => done });
    const overview = probeLiveLatency(stack, { client: PROBE_OVERVIEW, run: `${RUN}-o`, intervalMs: PROBE_INTERVAL_MS, maxProbes: 10_000, until: () => done, view: "overview" });
    const load = await ingestRound(stack, o).finally(() => (done = true));
    return { events_per_s: ingestFigures(o, [load]).events_per_s, ...latencyFigures([await probe]), overview: latencyFigures([await overview]), overview_priming_s: overviewPrimingS, overview_wake_s: overviewWakeS };
  });
  // The overview under a crowd of scoped dashboards: a window with the crowd open, then the same
  // load with only the probe's viewer (the peer).
  results.overview_crowd = await part(`overview latency with ${(CROWD.socketsPerUser * CROWD.clients.length).toLocaleString("en-US")} viewers open, against 1`, async () => {
    const load = (run: string): IngestOptions => ({
      ...workload("webhook", { run, durationMs: CROWD.windowMs, maxRequests: 10_000_000 }),
      clients: CROWD.clients,
      requestsPerSecond: CROWD.requestsPerSecond,
    });
    let warmedAt = 0;
    const window = async (run: string, crowd: Crowd | null) => {
      if (!endsBeforeAlarms(Date.now(), CROWD.windowMs, warmedAt)) throw new Error("the window would meet the warm-up's flush alarms");
      let done = false;
      const overview = probeLiveLatency(stack, { client: PROBE_OVERVIEW, run: `${run}-o`, intervalMs: PROBE_INTERVAL_MS, maxProbes: 10_000, until: () => done, view: "overview" });
      crowd?.count();
      const o = load(run);
      const served = await ingestRound(stack, o).finally(() => (done = true));
      const viewers = crowd ? await crowd.figures() : null;
      // The stack's CPU over the window: what sending to the crowd costs it, the harness's share aside.
      const workerdBusy = round(served.cpuSeconds / (served.load.elapsedMs / 1000), 3);
      return { events_per_s: ingestFigures(o, [served]).events_per_s, workerd_busy: workerdBusy, ...latencyFigures([await overview]), ...(viewers && { crowd: viewers }) };
    };
    // The seed-rate part's lake backlog is written now, so its alarms, which fire during these
    // windows, find only their clients' rollups to settle with the Overview (waiting them out would
    // take most of a minute).
    await drainLake(stack, [...workloads.bridged.clients, PROBE_BRIDGED, PROBE_OVERVIEW]);
    const users = await signInCrowdOnce();
    const openStarted = performance.now();
    const crowd = await users.open();
    const openS = round((performance.now() - openStarted) / 1000, 1);
    warmedAt = Date.now();
    const withCrowd = await warmUp(stack, load(`${RUN}-c`))
      .then(() => window(`${RUN}-c1`, crowd))
      .finally(() => crowd.close());
    // The top forgets each closed socket (a SQLite write apiece): that work is the crowd's, not the
    // next window's. The window's own check fails the part if this took too long.
    await waitForIdle(stack, 8_000);
    return { with_crowd: { ...withCrowd, open_s: openS }, one_viewer: await window(`${RUN}-c0`, null) };
  });
  results.hot_client = await part(`hot client: webhooks at one client of 1 and of ${HOT_SHARDS} shards, + live latency`, () =>
    benchHotClient(stack, { run: `${RUN}-h`, windowMs: quick ? 4_000 : 10_000, rounds: quick ? 1 : 2, probeIntervalMs: PROBE_INTERVAL_MS }),
  );
  results.parquet = await part("parquet flush", () => benchParquet(stack, PARQUET_CLIENT, `${RUN}-q`, T0, SIZE.parquetRows));
  results.export = await part(`export ${SIZE.exportRows.toLocaleString("en-US")} rows`, () => benchExport(stack, EXPORT_CLIENT, `${RUN}-x`, T0, SIZE.exportRows));
  results.compaction = await part(`compaction of ${SIZE.compactionFiles.toLocaleString("en-US")} small files`, () =>
    benchCompaction(stack, COMPACTION_CLIENT, `${RUN}-k`, T0, SIZE.compactionFiles, COMPACTION_ROWS_PER_FILE),
  );
  results.billing = await part("billing run", () => benchBilling(stack, yesterday.toISOString().slice(0, 10)));
} finally {
  await stack.stop();
  peerCluster?.stop();
}
results.postgres = peer;

const b = ingest.bridged;
const w = ingest.webhook;
const w1 = ingest.webhook_single;
const p = results.parquet as Awaited<ReturnType<typeof benchParquet>> | null;
const x = results.export as Awaited<ReturnType<typeof benchExport>> | null;
const k = results.compaction as Awaited<ReturnType<typeof benchCompaction>> | null;
const bill = results.billing as Awaited<ReturnType<typeof benchBilling>> | null;
const pgb = peer.bridged as { events_per_s: number } | undefined;
const pgw = peer.webhook as { events_per_s: number } | undefined;
const pgw1 = peer.webhook_single as { events_per_s: number } | undefined;
const seed = results.live_at_seed_rate as { p50_ms: number; p99_ms: number; overview: { p50_ms: number; p99_ms: number } } | null;
type CrowdWindow = { events_per_s: number; workerd_busy: number; p50_ms: number; p99_ms: number; crowd?: CrowdFigures };
const crowd = results.overview_crowd as { one_viewer: CrowdWindow; with_crowd: CrowdWindow } | null;
const hot = results.hot_client as HotClientResult | null;
const latencies = [b?.ws_latency, w?.ws_latency, w1?.ws_latency] as ({ p50_ms: number; p99_ms: number } | undefined)[];
const counts = (f: IngestFigures) => ({
  events_per_request: f.events_per_request,
  rows_written_per_event: f.rows_written_per_event,
  background_rows_written_per_event: f.background_rows_written_per_event,
  rows_read_per_event: f.rows_read_per_event,
  do_calls_per_event: f.do_calls_per_event,
  workerd_cpu_ms_per_request: f.workerd_cpu_ms_per_request,
});
// The 1-status workload only prices its own lever; without it the bill stands and that lever says "not measured".
const measured: Measured | null =
  b && w && p ? { bridged: counts(b), webhook: counts(w), ...(w1 && { webhook_single: counts(w1) }), parquet_bytes_per_event: p.parquet_bytes_per_event } : null;
const bills = measured ? SCENARIOS.map((s) => costModel(measured, s)) : null;
// Export time for 1 M rows: measured directly in the full run; the quick run scales its smaller export linearly.
const exportPerMillion = x ? round((x.export_s * 1e6) / x.rows, 3) : null;
const duckExportPerMillion = x ? round((x.duckdb_export_s * 1e6) / x.rows, 3) : null;

Object.assign(results, {
  ingest_bridged_events_per_s: b?.events_per_s ?? null,
  ingest_webhook_events_per_s: w?.events_per_s ?? null,
  postgres_peer_events_per_s: pgb?.events_per_s ?? null,
  postgres_peer_webhook_events_per_s: pgw?.events_per_s ?? null,
  ingest_webhook_single_events_per_s: w1?.events_per_s ?? null,
  postgres_peer_webhook_single_events_per_s: pgw1?.events_per_s ?? null,
  rows_written_per_event: b?.rows_written_per_event ?? null,
  webhook_rows_written_per_event: w?.rows_written_per_event ?? null,
  webhook_single_rows_written_per_event: w1?.rows_written_per_event ?? null,
  do_calls_per_event: b?.do_calls_per_event ?? null,
  webhook_do_calls_per_event: w?.do_calls_per_event ?? null,
  webhook_single_do_calls_per_event: w1?.do_calls_per_event ?? null,
  ws_latency_p50_ms: latencies.some((l) => !l) ? null : Math.max(...latencies.map((l) => l!.p50_ms)),
  ws_latency_p99_ms: latencies.some((l) => !l) ? null : Math.max(...latencies.map((l) => l!.p99_ms)),
  ws_latency_at_seed_rate_p50_ms: seed?.p50_ms ?? null,
  ws_latency_at_seed_rate_p99_ms: seed?.p99_ms ?? null,
  overview_latency_at_seed_rate_p50_ms: seed?.overview.p50_ms ?? null,
  overview_latency_at_seed_rate_p99_ms: seed?.overview.p99_ms ?? null,
  overview_crowd_viewers: crowd?.with_crowd.crowd?.viewers ?? null,
  overview_crowd_messages_per_s: crowd?.with_crowd.crowd?.messages_per_s ?? null,
  overview_crowd_latency_p50_ms: crowd?.with_crowd.p50_ms ?? null,
  overview_crowd_latency_p99_ms: crowd?.with_crowd.p99_ms ?? null,
  overview_one_viewer_latency_p50_ms: crowd?.one_viewer.p50_ms ?? null,
  overview_one_viewer_latency_p99_ms: crowd?.one_viewer.p99_ms ?? null,
  overview_crowd_workerd_busy: crowd?.with_crowd.workerd_busy ?? null,
  overview_one_viewer_workerd_busy: crowd?.one_viewer.workerd_busy ?? null,
  hot_client_one_shard_events_per_s: hot?.one_shard.events_per_s ?? null,
  hot_client_sharded_events_per_s: hot?.sharded.events_per_s ?? null,
  hot_client_sharded_do_calls_per_event: hot?.sharded.do_calls_per_event ?? null,
  hot_client_one_shard_do_calls_per_event: hot?.one_shard.do_calls_per_event ?? null,
  hot_client_sharded_rows_written_per_event: hot?.sharded.rows_written_per_event ?? null,
  hot_client_one_shard_rows_written_per_event: hot?.one_shard.rows_written_per_event ?? null,
  ws_latency_sharded_p50_ms: hot?.sharded.ws_latency.p50_ms ?? null,
  ws_latency_sharded_p99_ms: hot?.sharded.ws_latency.p99_ms ?? null,
  parquet_bytes_per_event: p?.parquet_bytes_per_event ?? null,
  duckdb_parquet_bytes_per_event: p?.duckdb_parquet_bytes_per_event ?? null,
  parquet_flush_s: p?.flush_s ?? null,
  export_rows_measured: x?.rows ?? null,
  export_1m_rows_s: exportPerMillion,
  duckdb_export_1m_rows_s: duckExportPerMillion,
  export_peak_rss_mb: x?.export_peak_rss_mb ?? null,
  export_rss_before_mb: x?.rss_before_mb ?? null,
  compaction_files: k?.files ?? null,
  compaction_rows: k?.rows ?? null,
  compaction_s: k?.compaction_s ?? null,
  duckdb_compaction_s: k?.duckdb_compaction_s ?? null,
  billing_clients_measured: bill?.clients ?? null,
  billing_10k_clients_s: bill ? round((bill.run_s * 10_000) / bill.clients, 2) : null,
  cost_usd_per_million_messages: bills?.[0]?.usd_per_million_messages ?? null,
  ratios: {
    bridged_vs_postgres: ratio(b?.events_per_s, pgb?.events_per_s),
    webhook_vs_postgres: ratio(w?.events_per_s, pgw?.events_per_s),
    webhook_single_vs_postgres: ratio(w1?.events_per_s, pgw1?.events_per_s),
    parquet_bytes_vs_duckdb: ratio(p?.parquet_bytes_per_event, p?.duckdb_parquet_bytes_per_event),
    export_time_vs_duckdb: ratio(exportPerMillion, duckExportPerMillion),
    compaction_time_vs_duckdb: ratio(k?.compaction_s, k?.duckdb_compaction_s),
    overview_crowd_vs_one_viewer_p99: ratio(crowd?.with_crowd.p99_ms, crowd?.one_viewer.p99_ms),
    hot_client_sharded_vs_one_shard: hot?.sharded_vs_one_shard_events_per_s ?? null,
  },
  measured_for_cost: measured,
  bills,
  errors,
  finished_at: new Date().toISOString(),
});

const dir = join(import.meta.dirname, "results");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
printSummary(results);
if (Object.keys(errors).length > 0) {
  console.error(`\n${Object.keys(errors).length} part(s) failed: ${Object.keys(errors).join(", ")} (details in bench/results/latest.json)`);
  process.exitCode = 1;
}
