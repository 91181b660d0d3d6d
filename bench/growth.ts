/**
 * `npm run bench:growth -- [bridged|webhook|webhook_single] [--rows N] [--older-months] [--clients N] [--seconds N] [--rounds N]`:
 * does ingest slow down as a client's object fills up? The main benchmark writes into nearly empty
 * event tables (a window adds a few thousand rows per client); in production a client's object
 * holds up to three months of events (`EVENT_RETENTION_MONTHS`), millions of rows for a busy client.
 *
 * Fills `--clients` objects ("full") with `--rows` events each by bridged batches and writes their
 * lake backlog; with `--older-months` also gives them two tables of earlier receive-months of
 * `--rows` events each, as a client has in steady state (every new event is looked up in them).
 * Then alternates bursts of the workload (bridged batches, or webhooks) into the full objects and
 * into as many fresh ones (new clients every round, so they stay small), the order flipped every
 * round: the machine's drift hits both alike and the pairs' ratios show what the full tables cost.
 * Prints every burst and the medians as JSON.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { HELP, commandLine } from "../scripts/command-line.ts";
import { benchIngest, workload, workloadKind, workloadName, type IngestOptions } from "./ingest.ts";
import { benchClientId } from "./events.ts";
import { drainLake, fill } from "./lake.ts";
import { startBenchStack, waitForQuiet, type BenchStack } from "./stack.ts";
import { median, ratio, round } from "./stats.ts";

const { values, positionals, fail } = commandLine(
  {
    allowPositionals: true,
    options: {
      ...HELP,
      rows: { type: "string", default: "4000000" },
      "older-months": { type: "boolean", default: false },
      clients: { type: "string", default: "2" },
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "5" },
    },
  },
  "usage: npm run bench:growth -- [bridged|webhook|webhook_single] [--rows N (4000000)] [--older-months] [--clients N (2)] [--seconds N (10)] [--rounds N (5)]",
);
const chosen = workloadName(positionals[0], "bridged");
const rows = Number(values.rows);
/** Whole 1,000-event batches. */
const rowsEach = Math.ceil(rows / 1_000) * 1_000;
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
if (![rows, clients, seconds, rounds].every((x) => Number.isInteger(x) && x > 0)) fail("--rows, --clients, --seconds and --rounds must be positive integers");

const run = `growth-${Date.now()}`;
const full = Array.from({ length: clients }, (_, i) => i);
const freshOf = (r: number) => Array.from({ length: clients }, (_, i) => clients * (r + 1) + i);

/** Fills `full` to `rows` events each, then writes their lake backlog; returns the seconds that took. */
async function fillFull(stack: BenchStack): Promise<number> {
  const t = performance.now();
  await fill(stack, full, `${run}-fill`, Date.now(), rowsEach, { concurrency: 4 });
  await drainLake(stack, full);
  return (performance.now() - t) / 1000;
}

/**
 * Gives the full objects the two earlier receive-months' event tables, `rowsEach` random events each.
 * Local time is real time, so an object only ever creates this month's table; these are written into
 * the objects' SQLite files (workerd's local storage, one file per object) while the objects sleep
 * (local workerd evicts an idle object after 10 s), and each object finds them when it next starts.
 */
async function addOlderMonths(stack: BenchStack): Promise<void> {
  await new Promise((r) => setTimeout(r, 15_000));
  const ids = new Set(full.map(benchClientId));
  let given = 0;
  for (const entry of readdirSync(stack.stateDir, { recursive: true, encoding: "utf8" })) {
    if (!entry.includes("ClientCounter") || !entry.endsWith(".sqlite")) continue;
    const db = new DatabaseSync(join(stack.stateDir, entry));
    try {
      const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'meta'").get();
      const client = hasMeta ? (db.prepare("SELECT value FROM meta WHERE key = 'client_id'").get() as { value: string } | undefined)?.value : undefined;
      if (!client || !ids.has(client)) continue;
      // The object's own DDL for this month's table, under the two earlier months' names.
      const current = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name GLOB 'events_[0-9]*'").get() as { name: string; sql: string };
      const month = Number(current.name.slice(7, 11)) * 12 + Number(current.name.slice(11, 13)) - 1;
      for (const m of [month - 1, month - 2]) {
        const table = `events_${Math.floor(m / 12)}${String((m % 12) + 1).padStart(2, "0")}`;
        db.exec(current.sql.replace(current.name, table));
        db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rowsEach})
                 INSERT INTO ${table} (message_id, event_ref) SELECT 'wamid.' || hex(randomblob(12)), char(127) || 'read' FROM n`);
      }
      given += 1;
    } finally {
      db.close();
    }
  }
  if (given !== full.length) throw new Error(`found ${given} of ${full.length} full objects' SQLite files under ${stack.stateDir}`);
}

type Burst = { events_per_s: number; rows_written_per_event: number; rows_read_per_event: number; cpu_us_per_event: number; request_p99_ms: number };

async function burst(stack: BenchStack, side: "full" | "fresh", targets: number[], r: number): Promise<Burst> {
  const start = Date.now();
  const plan: IngestOptions = { ...workload(chosen, { run: `${run}-${side}${r}`, clients: targets.length, durationMs: seconds * 1_000, maxRequests: 10_000_000 }), clients: targets };
  const f = await benchIngest(stack, plan);
  await drainLake(stack, targets);
  await waitForQuiet(stack, start);
  const b = { events_per_s: f.events_per_s, rows_written_per_event: f.rows_written_per_event, rows_read_per_event: f.rows_read_per_event, cpu_us_per_event: round((f.workerd_cpu_ms_per_request * 1_000) / f.events_per_request, 1), request_p99_ms: f.request_p99_ms };
  console.log(JSON.stringify({ side, round: r, ...b, failures: f.failures }));
  return b;
}

const stack = await startBenchStack(clients * (rounds + 1), workloadKind(chosen) === "webhook" ? clients * (rounds + 1) : 0);
try {
  const fillS = await fillFull(stack);
  if (values["older-months"]) await addOlderMonths(stack);
  console.log(JSON.stringify({ filled: { clients, rows_each: rowsEach, older_months: values["older-months"], s: round(fillS, 1) } }));
  const pairs: { full: Burst; fresh: Burst }[] = [];
  for (let r = 0; r < rounds; r++) {
    const pair: Partial<{ full: Burst; fresh: Burst }> = {};
    for (const side of r % 2 === 0 ? (["full", "fresh"] as const) : (["fresh", "full"] as const)) pair[side] = await burst(stack, side, side === "full" ? full : freshOf(r), r);
    pairs.push(pair as { full: Burst; fresh: Burst });
  }
  const eventsRatios = pairs.map((p) => ratio(p.full.events_per_s, p.fresh.events_per_s));
  const cpuRatios = pairs.map((p) => ratio(p.full.cpu_us_per_event, p.fresh.cpu_us_per_event));
  const middle = (xs: (number | null)[]) => median(xs.filter((x): x is number => x !== null));
  console.log(
    JSON.stringify({
      workload: chosen,
      rows_per_full_client: rowsEach,
      pairs_events_per_s_full_over_fresh: eventsRatios,
      pairs_cpu_per_event_full_over_fresh: cpuRatios,
      median_events_per_s_full_over_fresh: middle(eventsRatios),
      median_cpu_per_event_full_over_fresh: middle(cpuRatios),
    }),
  );
} finally {
  await stack.stop();
}
