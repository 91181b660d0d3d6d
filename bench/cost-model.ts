/**
 * Cloudflare bill per million WhatsApp messages, from the benchmark's measured per-event counts and
 * written-down assumptions. `npm run cost -- [results.json] [--messages-per-day N …]` prints the
 * breakdown for bench/results/latest.json (or, on a fresh clone, for the committed published.json);
 * bench/run.ts calls `costModel` for `cost_usd_per_million_messages`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BROADCAST_INTERVAL_MS } from "../durable-objects/broadcast-interval.ts";
import { forwardIntervalMs } from "../durable-objects/forward-interval.ts";
import { FLUSH_INTERVAL_MS, FLUSH_SPREAD_MS } from "../durable-objects/lake-schedule.ts";
import { RECOMPUTE_DAYS } from "../schema/billing.ts";
import { COMPACTION_DAYS } from "../workers/lake/closed-days.ts";
import { HELP, commandLine } from "../scripts/command-line.ts";
import { round } from "./stats.ts";

/**
 * List prices in USD, Workers Paid plan, without the included monthly allowances (they are small
 * against this volume) and without the $5/month plan fee. Sources, read 2026-12:
 * developers.cloudflare.com/workers/platform/pricing, /durable-objects/platform/pricing,
 * /r2/pricing, /d1/platform/pricing, /observability/pricing.
 */
export const PRICES = {
  workerRequestsPerM: 0.3,
  workerCpuMsPerM: 0.02,
  doRequestsPerM: 0.15,
  /**
   * Duration is billed on 128 MB per object, while it runs or sits in memory unable to hibernate; an
   * idle object that could hibernate is not billed, even before the runtime hibernates it
   * (developers.cloudflare.com/durable-objects/concepts/durable-object-lifecycle).
   */
  doGbSecondsPerM: 12.5,
  doRowsWrittenPerM: 1.0,
  doRowsReadPerM: 0.001,
  doStorageGbMonth: 0.2,
  r2ClassAPerM: 4.5,
  r2ClassBPerM: 0.36,
  r2StorageGbMonth: 0.015,
  d1RowsWrittenPerM: 1.0,
  d1RowsReadPerM: 0.001,
  /**
   * Workers Logs, under Cloudflare Observability pricing since 2026-12-01 (developers.cloudflare.com/observability/pricing;
   * until then $0.60 a million events): per GB ingested (50 GB a billing cycle included) and per GB-month
   * queryable (12 included), each `console` line, and each invocation's execution log when those are on.
   */
  logsIngestGb: 0.25,
  logsStorageGbMonth: 0.1,
} as const;

const DO_MEMORY_GB = 0.128;
/**
 * Bytes ingested per Workers Logs event, its enriched attributes included: Cloudflare's published average
 * for the `workers` dataset (4.84 KB, developers.cloudflare.com/observability/logs/datasets), not measured here.
 */
const LOG_EVENT_BYTES = 4_840;
/** Days Workers Logs keeps an event queryable; storage is billed as each day's queryable GB ÷ 30. */
const LOG_RETENTION_DAYS = 7;
/**
 * A sending client's flushes a minute: its object flushes FLUSH_INTERVAL_MS less its share of
 * FLUSH_SPREAD_MS after the first rows wait, the share spread evenly by object id, so the mean of
 * 60 s ÷ delay over delays from 40 to 60 s (1.22).
 */
export const FLUSHES_PER_SENDING_MINUTE = (60_000 / FLUSH_SPREAD_MS) * Math.log(FLUSH_INTERVAL_MS / (FLUSH_INTERVAL_MS - FLUSH_SPREAD_MS));
/**
 * Alarms set per flush, each billed as a row written: the re-arm for the next flush and, once the
 * client goes quiet, the wake a checkpoint later that asks the Overview whether it saved the whole
 * hour (an upper bound: a steady sender's next flush asks in its place).
 */
const ALARMS_SET_PER_FLUSH = 2;
const DAYS_PER_MONTH = 30.4;
/** Storage is billed by the GB-month, each day's peak GB ÷ 30: a month of DAYS_PER_MONTH days bills this many times the GB stored. */
const STORAGE_MONTHS_PER_MONTH = DAYS_PER_MONTH / 30;

/** What the benchmark measured for one ingest workload. */
export interface WorkloadCounts {
  events_per_request: number;
  rows_written_per_event: number;
  /** The part of rows_written_per_event written by flushes in the background (priced on the flush line instead). */
  background_rows_written_per_event: number;
  rows_read_per_event: number;
  do_calls_per_event: number;
  /** workerd CPU per request (Worker + object + SQLite): an upper bound for the Worker's billed CPU. */
  workerd_cpu_ms_per_request: number;
}

export interface Measured {
  /** Webhooks of 1–10 statuses (mean 5.5). */
  webhook: WorkloadCounts;
  /** Webhooks of one status each; absent in results from before 2026-11-30 12:00 UTC. */
  webhook_single?: WorkloadCounts;
  bridged: WorkloadCounts;
  parquet_bytes_per_event: number;
}

/** Every assumption the bill depends on, with the value the documented scenarios use. */
export interface Scenario {
  name: string;
  messagesPerDay: number;
  /** Status events per message through Meta's webhooks (sent, delivered, read). */
  webhookEventsPerMessage: number;
  /** `accepted` events per message from the sender's Kafka, through the bridge. */
  bridgedEventsPerMessage: number;
  /** The measured webhook workload whose counts (statuses per request, rows, calls, CPU) Meta's traffic has. */
  webhookWorkload: "webhook" | "webhook_single";
  /** Clients that send during the active hours, and how many hours a day they send. */
  activeClients: number;
  activeHoursPerDay: number;
  /**
   * Share of sending clients someone watches on the client's own live page. The others' objects are
   * billed only while they run a call or an alarm: since 2026-11-30 a relayed ingest call leaves no
   * timer behind (client-live.ts); until then a 1–2 s rollup timer held every sending object awake.
   */
  watchedShare: number;
  /**
   * How long a watched client's object stays unable to hibernate after each ingest call, so billed:
   * the broadcast timer a change arms, at most BROADCAST_INTERVAL_MS (0 ms when the last broadcast is
   * older, as it mostly is for a client calling less than ten times a second). Priced as that long per call
   * of the watched share, and never longer than the time those clients send: an upper bound.
   */
  watchedAwakeMsPerCall: number;
  /** Wall time an object is busy per ingest call or alarm: its CPU plus waiting for its storage commit. */
  objectBusyMsPerCall: number;
  /**
   * The Overview writes the rollups it got in a checkpoint this often, one row per client that
   * reported (overview.ts CHECKPOINT_INTERVAL_MS = 5 s; until 2026-11-29 one row per rollup). Every
   * ingest call hands its rollup to the Worker, which relays many clients' in one Overview call; how
   * many share a call depends on how many isolates carry the traffic, so the model prices one Overview
   * request per ingest call (an upper bound). Rollups read the last hour from memory (since 2026-11-29):
   * only an object's first after a wake reads SQLite (≤ 60 rows), which the model leaves out.
   */
  overviewCheckpointSeconds: number;
  /**
   * Overview objects (wrangler.toml's OVERVIEW_SHARDS, ⌈sending clients ÷ 500⌉): each is awake all
   * day, and each but the top forwards what changed to the top at most every `forwardIntervalMs`
   * (50 ms up to 26 shards), priced as that many a second over the sending hours (an upper bound:
   * docs/live.md, "Sharding the Overview").
   */
  overviewShards: number;
  /** Outbox flushes per sending client per active minute (FLUSHES_PER_SENDING_MINUTE). */
  flushesPerClientMinute: number;
  /**
   * Counter rows a flush upserts (pending-aggregates.ts): a `minute_totals` row per minute touched
   * since the last flush (~2: a minute's flush straddles a minute boundary) plus day × category ×
   * country ledger lines (~4). Until 2026-11-29 a row per minute × status × category (~20 in all).
   */
  counterRowsPerFlush: number;
  /** Days the lake keeps detail rows. */
  lakeRetentionDays: number;
  /** Days an event row lives: its receive-month plus two more (client-counter-tables.ts), ~2.5 months on average. */
  eventRetentionDays: number;
  /**
   * SQLite bytes per event row: the (message_id, event key) key, the billing columns on one row per
   * message, B-tree overhead. Measured in workerd: 98 B with 62-character wamids and a third of the rows
   * billed (175 B before 2026-11-30, when the key repeated the wamid in a whole WhatsApp event id).
   */
  eventRowBytes: number;
  /** Billing lines per client per day (categories × countries) and days recomputed per run. */
  billingLinesPerClientDay: number;
  billingRecomputeDays: number;
  /**
   * Share of successful requests that write an access-log line (wrangler.toml's
   * ACCESS_LOG_SAMPLE_RATE; failed and slow ones always do, and are left out here as rare).
   */
  accessLogSampleRate: number;
  /**
   * Whether Workers Logs keeps Cloudflare's execution log of every invocation: each Worker request,
   * each Durable Object call (ingest, rollup relay, an Overview shard's forward) and each alarm. wrangler.toml turns them off
   * (`invocation_logs = false`); `[observability] enabled = true` alone leaves them on.
   */
  invocationLogs: boolean;
}

export const SCENARIOS: Scenario[] = [
  {
    name: "100 M messages/day",
    messagesPerDay: 100e6,
    webhookEventsPerMessage: 3,
    bridgedEventsPerMessage: 1,
    webhookWorkload: "webhook",
    activeClients: 2_000,
    activeHoursPerDay: 14,
    watchedShare: 0.1,
    watchedAwakeMsPerCall: BROADCAST_INTERVAL_MS,
    objectBusyMsPerCall: 10,
    overviewCheckpointSeconds: 5,
    overviewShards: 4,
    flushesPerClientMinute: FLUSHES_PER_SENDING_MINUTE,
    counterRowsPerFlush: 6,
    lakeRetentionDays: 400,
    eventRetentionDays: 76,
    eventRowBytes: 100,
    billingLinesPerClientDay: 6,
    billingRecomputeDays: RECOMPUTE_DAYS,
    accessLogSampleRate: 0.01,
    invocationLogs: false,
  },
];
SCENARIOS.push({ ...SCENARIOS[0]!, name: "1 B messages/day", messagesPerDay: 1e9, activeClients: 10_000, overviewShards: 20 });

export interface Bill {
  scenario: string;
  /** USD per month by line item. */
  monthly: Record<string, number>;
  monthly_total_usd: number;
  usd_per_million_messages: number;
}

/** The monthly bill of a scenario, line by line. */
export function costModel(m: Measured, s: Scenario): Bill {
  const webhookEvents = s.messagesPerDay * s.webhookEventsPerMessage;
  const bridgedEvents = s.messagesPerDay * s.bridgedEventsPerMessage;
  const webhook = m[s.webhookWorkload];
  if (!webhook) throw new Error(`the results hold no ${s.webhookWorkload} workload`);
  const webhookRequests = webhookEvents / webhook.events_per_request;
  const bridgedRequests = bridgedEvents / m.bridged.events_per_request;
  const ingestCalls = webhookEvents * webhook.do_calls_per_event + bridgedEvents * m.bridged.do_calls_per_event;
  const activeSeconds = s.activeClients * s.activeHoursPerDay * 3_600;
  const flushes = s.activeClients * s.activeHoursPerDay * 60 * s.flushesPerClientMinute;
  // The flushes that landed in the run are left out here: the flush line prices them.
  const callRowsPerEvent = (w: WorkloadCounts) => w.rows_written_per_event - w.background_rows_written_per_event;

  const workerRequests = webhookRequests + bridgedRequests;
  // Flush alarms are four object requests each (see "DO requests: flush alarms").
  const overviewForwards = (s.overviewShards - 1) * (1_000 / forwardIntervalMs(s.overviewShards)) * s.activeHoursPerDay * 3_600;
  const invocations = workerRequests + ingestCalls * 2 + flushes * 4 + overviewForwards;
  const watchedAwakeSeconds = s.watchedShare * Math.min(activeSeconds, (ingestCalls * s.watchedAwakeMsPerCall) / 1_000);
  const logLines = workerRequests * s.accessLogSampleRate + (s.invocationLogs ? invocations : 0);

  const day: Record<string, number> = {
    "Workers requests": (workerRequests / 1e6) * PRICES.workerRequestsPerM,
    "Workers CPU": ((webhookRequests * webhook.workerd_cpu_ms_per_request + bridgedRequests * m.bridged.workerd_cpu_ms_per_request) / 1e6) * PRICES.workerCpuMsPerM,
    "DO requests: ingest": (ingestCalls / 1e6) * PRICES.doRequestsPerM,
    // A rollup per ingest call, each priced as its own Overview request (see overviewCheckpointSeconds).
    "DO requests: overview rollups": (ingestCalls / 1e6) * PRICES.doRequestsPerM,
    // The alarm, which after relayed rollups sends the client's whole hour to the Overview, then comes
    // back after the Overview's checkpoint and asks whether it was saved: four requests (an upper
    // bound: a client that keeps sending has its next flush ask in place of the wake, two).
    "DO requests: overview forwards": (overviewForwards / 1e6) * PRICES.doRequestsPerM,
    "DO requests: flush alarms": ((flushes * 4) / 1e6) * PRICES.doRequestsPerM,
    // Every object while busy, watched ones while their broadcast timer is pending, and the Overview's shards all day.
    "DO duration (awake objects)":
      ((watchedAwakeSeconds + ((ingestCalls + flushes * 4) * s.objectBusyMsPerCall) / 1000 + 86_400 * s.overviewShards) * DO_MEMORY_GB / 1e6) * PRICES.doGbSecondsPerM,
    "DO rows written: ingest": ((webhookEvents * callRowsPerEvent(webhook) + bridgedEvents * callRowsPerEvent(m.bridged)) / 1e6) * PRICES.doRowsWrittenPerM,
    // The flush writes/deletes its range marker, moves the flushed-through and aggregates-through
    // marks, creates the next outbox table (2 rows; the written one is dropped, which writes none),
    // upserts the counter lines and sets its alarms.
    "DO rows written: flush": ((flushes * (6 + s.counterRowsPerFlush + ALARMS_SET_PER_FLUSH)) / 1e6) * PRICES.doRowsWrittenPerM,
    "DO rows written: overview rollups": ((activeSeconds / s.overviewCheckpointSeconds) / 1e6) * PRICES.doRowsWrittenPerM,
    "DO rows read: ingest": ((webhookEvents * webhook.rows_read_per_event + bridgedEvents * m.bridged.rows_read_per_event) / 1e6) * PRICES.doRowsReadPerM,
    // The nightly compaction lists each of a client's COMPACTION_DAYS partitions (a list is class A) and writes one file.
    "R2 class A (flush puts + daily compaction)": ((flushes + s.activeClients * (1 + COMPACTION_DAYS)) / 1e6) * PRICES.r2ClassAPerM,
    "R2 class B (compaction reads)": (flushes / 1e6) * PRICES.r2ClassBPerM,
    "D1 rows (billing)": ((s.activeClients * s.billingLinesPerClientDay * s.billingRecomputeDays) / 1e6) * (PRICES.d1RowsWrittenPerM + PRICES.d1RowsReadPerM),
    // Ingested once, then queryable for LOG_RETENTION_DAYS: that day's GB × 7 ÷ 30 GB-months.
    "Workers Logs": ((logLines * LOG_EVENT_BYTES) / 1e9) * (PRICES.logsIngestGb + (PRICES.logsStorageGbMonth * LOG_RETENTION_DAYS) / 30),
  };
  const totalEvents = webhookEvents + bridgedEvents;
  const doStorageGb = (totalEvents * s.eventRetentionDays * s.eventRowBytes) / 1e9;
  const lakeGb = (totalEvents * m.parquet_bytes_per_event * s.lakeRetentionDays) / 1e9;
  const monthly: Record<string, number> = {};
  for (const [k, v] of Object.entries(day)) monthly[k] = round(v * DAYS_PER_MONTH, 2);
  monthly[`DO storage (event rows, ~${s.eventRetentionDays} d)`] = round(doStorageGb * STORAGE_MONTHS_PER_MONTH * PRICES.doStorageGbMonth, 2);
  monthly[`R2 storage (lake, ${s.lakeRetentionDays} d)`] = round(lakeGb * STORAGE_MONTHS_PER_MONTH * PRICES.r2StorageGbMonth, 2);
  const total = Object.values(monthly).reduce((a, b) => a + b, 0);
  return {
    scenario: s.name,
    monthly,
    monthly_total_usd: round(total, 0),
    usd_per_million_messages: round(total / ((s.messagesPerDay * DAYS_PER_MONTH) / 1e6), 3),
  };
}

/** Design choices that move the bill, each as a change to the 100 M/day scenario. */
export const LEVERS: { name: string; change: Partial<Scenario> }[] = [
  { name: "as built", change: {} },
  { name: "every sending object awake up to 2 s after each call (the 1–2 s rollup timer, until 2026-11-30)", change: { watchedShare: 1, watchedAwakeMsPerCall: 2_000 } },
  { name: "nobody watches a client's own page (only the overview)", change: { watchedShare: 0 } },
  { name: "flush every 5 min instead of 1 min", change: { flushesPerClientMinute: FLUSHES_PER_SENDING_MINUTE / 5 } },
  { name: "Meta sends 1 status per webhook (worst case, measured)", change: { webhookWorkload: "webhook_single" } },
  { name: "Workers Logs with Cloudflare's execution log per invocation (`[observability]` defaults)", change: { invocationLogs: true } },
];

/** A lever's bill on `base`, or null when the results lack the webhook workload it needs (older results files). */
function leverBill(m: Measured, l: (typeof LEVERS)[number], base: Scenario = SCENARIOS[0]!): Bill | null {
  const s = { ...base, ...l.change };
  return m[s.webhookWorkload] ? costModel(m, s) : null;
}

/**
 * Your own traffic as a scenario: the 100 M/day one with what the flags change. `--messages-per-day`
 * (e.g. 3e7), `--clients` (that send), `--hours` (a day they send), `--webhooks mix|single` (which
 * measured webhook workload Meta's traffic looks like), `--watched` (share of sending clients whose
 * own live page is open). Null when no flag is given.
 */
export function scenarioFromFlags(flags: Record<string, string | undefined>): Scenario | null {
  const number = (name: string, inRange: (n: number) => boolean, range: string): number | undefined => {
    const raw = flags[name];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!inRange(n)) throw new Error(`--${name} must be ${range}, got ${raw}`);
    return n;
  };
  const positive = (n: number) => n > 0 && Number.isFinite(n);
  const webhooks = flags.webhooks;
  if (webhooks !== undefined && webhooks !== "mix" && webhooks !== "single") throw new Error(`--webhooks must be mix or single, got ${webhooks}`);
  const change: Partial<Scenario> = {
    messagesPerDay: number("messages-per-day", positive, "a positive number"),
    activeClients: number("clients", (n) => Number.isInteger(n) && n > 0, "a positive whole number"),
    activeHoursPerDay: number("hours", (n) => n > 0 && n <= 24, "in (0, 24]"),
    watchedShare: number("watched", (n) => n >= 0 && n <= 1, "in [0, 1]"),
    webhookWorkload: webhooks === undefined ? undefined : webhooks === "single" ? "webhook_single" : "webhook",
  };
  const given = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as Partial<Scenario>;
  if (Object.keys(given).length === 0) return null;
  const base = SCENARIOS[0]!;
  const s = { ...base, ...given };
  return { ...s, name: `${(s.messagesPerDay / 1e6).toLocaleString("en-US")} M messages/day, ${s.activeClients.toLocaleString("en-US")} clients` };
}

/** The bills and the levers as Markdown tables (docs/capacity.md). */
function markdown(m: Measured): string {
  const bills = SCENARIOS.map((s) => costModel(m, s));
  const items = Object.keys(bills[0]!.monthly).sort((a, b) => bills[0]!.monthly[b]! - bills[0]!.monthly[a]!);
  const usd = (v: number) => `$${v.toLocaleString("en-US", { maximumFractionDigits: 0 })}`;
  const bill = [
    `| monthly, USD | ${bills.map((b) => b.scenario).join(" | ")} |`,
    `|---|${bills.map(() => "---:").join("|")}|`,
    ...items.map((k) => `| ${k} | ${bills.map((b) => usd(b.monthly[k]!)).join(" | ")} |`),
    `| **total** | ${bills.map((b) => `**${usd(b.monthly_total_usd)}**`).join(" | ")} |`,
    `| **per million messages** | ${bills.map((b) => `**$${b.usd_per_million_messages}**`).join(" | ")} |`,
  ];
  const levers = [
    "| design choice (100 M/day) | monthly | per million messages |",
    "|---|---:|---:|",
    ...LEVERS.map((l) => {
      const b = leverBill(m, l);
      return b ? `| ${l.name} | ${usd(b.monthly_total_usd)} | $${b.usd_per_million_messages} |` : `| ${l.name} | not measured | |`;
    }),
  ];
  return `${bill.join("\n")}\n\n${levers.join("\n")}`;
}

function main(): void {
  const { values, positionals, fail } = commandLine(
    {
      allowPositionals: true,
      options: {
        ...HELP,
        markdown: { type: "boolean", default: false },
        "messages-per-day": { type: "string" },
        clients: { type: "string" },
        hours: { type: "string" },
        webhooks: { type: "string" },
        watched: { type: "string" },
      },
    },
    "usage: npm run cost -- [results.json] [--messages-per-day N --clients N [--hours H] [--webhooks mix|single] [--watched SHARE (0–1)]] [--markdown]",
  );
  // Your own latest run, else the run the README and docs/capacity.md quote (committed with them).
  const file = positionals[0] ?? [join(import.meta.dirname, "results", "latest.json"), join(import.meta.dirname, "results", "published.json")].find((f) => existsSync(f))!;
  if (!existsSync(file)) fail(`${file} not found: run \`npm run bench\` (or \`npm run bench -- --quick\`) first, or name a results file`);
  const results = JSON.parse(readFileSync(file, "utf8")) as { measured_for_cost: Measured | null; started_at?: string; commit?: string; quick?: boolean };
  const m = results.measured_for_cost;
  if (!m) throw new Error(`${file} has no measured counts (a part of that run failed; see its "errors")`);
  const { markdown: asMarkdown, help: _help, ...flags } = values;
  if (asMarkdown) {
    console.log(markdown(m));
    return;
  }
  let own: Scenario | null = null;
  try {
    own = scenarioFromFlags(flags);
  } catch (err) {
    fail((err as Error).message);
  }
  const run = [results.started_at, results.commit && `commit ${results.commit}`, results.quick && "quick run"].filter(Boolean).join(", ");
  console.log(`Measured counts from ${relative(process.cwd(), file)}${run ? ` (${run})` : ""}`);
  for (const s of own ? [own] : SCENARIOS) {
    const bill = costModel(m, s);
    console.log(`\n${bill.scenario}: $${bill.monthly_total_usd.toLocaleString("en-US")}/month, $${bill.usd_per_million_messages} per million messages`);
    for (const [k, v] of Object.entries(bill.monthly).sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(48)} ${v.toFixed(2).padStart(12)}`);
  }
  const base = own ?? SCENARIOS[0]!;
  console.log(`\nLevers (${base.name}):`);
  for (const l of LEVERS) {
    const bill = leverBill(m, l, base);
    console.log(`  ${l.name.padEnd(78)} ${bill ? `$${String(bill.monthly_total_usd).padStart(8)}/month  $${bill.usd_per_million_messages}/M msgs` : "not measured in these results"}`);
  }
}

if (import.meta.filename === process.argv[1]) {
  try {
    main();
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
  }
}
