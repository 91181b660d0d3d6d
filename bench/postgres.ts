/**
 * The throughput peer: PostgreSQL 15 (Debian's package) in a throwaway cluster on a free local
 * port, fsync on, doing the seeds' pipeline per batch in one transaction — dedup insert with
 * ON CONFLICT, per-minute counter upserts, the billable ledger and the detail rows.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../scripts/local-stack.ts";
import { requestEvents, type LoadPlan } from "./load.ts";
import type { BenchEvent } from "./events.ts";
import { percentile, round } from "./stats.ts";

const BIN = "/usr/lib/postgresql/15/bin";

const SCHEMA = `
CREATE TABLE seen (event_id text PRIMARY KEY);
CREATE TABLE minute_counts (client_id text, minute bigint, status text, category text, n bigint NOT NULL,
  PRIMARY KEY (client_id, minute, status, category));
CREATE TABLE ledger (client_id text, message_id text PRIMARY KEY, day date, category text, country text, occurred_at bigint);
CREATE TABLE events (event_id text, message_id text, client_id text, status text, occurred_at bigint, received_at bigint,
  category text, billable boolean, pricing_type text, recipient text, country text, phone_number_id text, template text);
`;

export interface PeerCluster {
  url: string;
  stop(): void;
}

/** Runs `cmd` as the `postgres` user when we are root (PostgreSQL refuses to run as root). */
function asPostgres(cmd: string, args: string[]): void {
  const root = process.getuid?.() === 0;
  execFileSync(root ? "runuser" : cmd, root ? ["-u", "postgres", "--", cmd, ...args] : args, { stdio: ["ignore", "pipe", "pipe"] });
}

/** Starts a fresh cluster; null (with the reason) when PostgreSQL 15 is not installed. */
export async function startPostgres(): Promise<PeerCluster | { missing: string }> {
  if (!existsSync(join(BIN, "initdb"))) return { missing: `${BIN}/initdb not found (apt-get install -y postgresql)` };
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-pg-"));
  chmodSync(dir, 0o777);
  const data = join(dir, "data");
  if (process.getuid?.() === 0) execFileSync("chown", ["postgres", dir]);
  const port = await freePort();
  asPostgres(join(BIN, "initdb"), ["-D", data, "--auth=trust", "-U", "postgres", "--no-instructions"]);
  asPostgres(join(BIN, "pg_ctl"), [
    "-D", data, "-w", "-l", join(dir, "log"),
    "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB`,
    "start",
  ]);
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    // A stopped run can ask twice (its signal, then its parent's exit), and pg_ctl fails on a removed cluster.
    stop() {
      if (stopped) return;
      stopped = true;
      asPostgres(join(BIN, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** One batch, one transaction: the same work ClientCounter.ingest does, in PostgreSQL. */
async function ingestBatch(db: pg.PoolClient, events: BenchEvent[], receivedAt: number): Promise<number> {
  await db.query("BEGIN");
  const fresh = await db.query<{ event_id: string }>(
    "INSERT INTO seen (event_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
    [events.map((e) => e.event_id)],
  );
  const ids = new Set(fresh.rows.map((r) => r.event_id));
  const accepted = events.filter((e) => ids.delete(e.event_id));
  if (accepted.length > 0) {
    const minutes = new Map<string, [string, number, string, string, number]>();
    for (const e of accepted) {
      const minute = e.occurred_at - (e.occurred_at % 60_000);
      const k = `${e.client_id}|${minute}|${e.status}|${e.category}`;
      const row = minutes.get(k);
      if (row) row[4]++;
      else minutes.set(k, [e.client_id, minute, e.status, e.category, 1]);
    }
    const m = [...minutes.values()];
    await db.query(
      `INSERT INTO minute_counts SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])
       ON CONFLICT (client_id, minute, status, category) DO UPDATE SET n = minute_counts.n + excluded.n`,
      [m.map((r) => r[0]), m.map((r) => r[1]), m.map((r) => r[2]), m.map((r) => r[3]), m.map((r) => r[4])],
    );
    const bill = new Map<string, BenchEvent>();
    for (const e of accepted) {
      if ((e.status !== "delivered" && e.status !== "read") || !e.billable) continue;
      const prev = bill.get(e.message_id);
      if (!prev || e.occurred_at < prev.occurred_at) bill.set(e.message_id, e);
    }
    const b = [...bill.values()];
    if (b.length > 0) {
      await db.query(
        `INSERT INTO ledger SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::text[], $6::bigint[])
         ON CONFLICT (message_id) DO UPDATE SET day = excluded.day, category = excluded.category, country = excluded.country,
           occurred_at = excluded.occurred_at WHERE ledger.occurred_at > excluded.occurred_at`,
        [b.map((e) => e.client_id), b.map((e) => e.message_id), b.map((e) => utcDay(e.occurred_at)), b.map((e) => e.category), b.map((e) => e.country), b.map((e) => e.occurred_at)],
      );
    }
    const col = <K extends keyof BenchEvent>(k: K) => accepted.map((e) => e[k]);
    await db.query(
      `INSERT INTO events SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
         $7::text[], $8::boolean[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])`,
      [col("event_id"), col("message_id"), col("client_id"), col("status"), col("occurred_at"), accepted.map(() => receivedAt),
        col("category"), col("billable"), col("pricing_type"), col("recipient"), col("country"), col("phone_number_id"), col("template")],
    );
  }
  await db.query("COMMIT");
  return accepted.length;
}

export interface PeerFigures {
  requests: number;
  accepted: number;
  elapsed_s: number;
  events_per_s: number;
  batch_p50_ms: number;
  batch_p99_ms: number;
}

/** One window of the peer: the same requests one window of zapmeter's load carried. */
export interface PeerRound {
  accepted: number;
  elapsedMs: number;
  latenciesMs: number[];
}

/** The peer's tables, empty: once per workload, so its rounds build on each other as zapmeter's do. */
export async function resetPeer(url: string): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query("DROP TABLE IF EXISTS seen, minute_counts, ledger, events");
    await db.query(SCHEMA);
  } finally {
    await db.end();
  }
}

/**
 * Feeds PostgreSQL the same requests a load plan sends to zapmeter (same events, same batches),
 * `plan.concurrency` connections in parallel, bounded like the load.
 */
export async function postgresRound(url: string, plan: LoadPlan): Promise<PeerRound> {
  const pool = new pg.Pool({ connectionString: url, max: plan.concurrency });
  // An idle client that loses its connection is reported on the pool, and unhandled that ends the
  // process (it did once, after the peer's figures were in, as the cluster stopped); a query in
  // flight still rejects its own promise.
  pool.on("error", (err) => console.warn(`postgres peer: idle connection lost: ${err.message}`));
  try {
    const next = new Map<number, number>();
    const latenciesMs: number[] = [];
    let issued = 0;
    let accepted = 0;
    const start = performance.now();
    const deadline = start + plan.durationMs;
    const lane = async () => {
      const db = await pool.connect();
      try {
        while (issued < plan.maxRequests && performance.now() < deadline) {
          const events = requestEvents(plan, issued++, next);
          const t = performance.now();
          // Read after the await: `accepted += await …` would add to the value from before it.
          const n = await ingestBatch(db, events, Date.now());
          accepted += n;
          latenciesMs.push(performance.now() - t);
        }
      } finally {
        db.release();
      }
    };
    await Promise.all(Array.from({ length: plan.concurrency }, lane));
    return { accepted, elapsedMs: performance.now() - start, latenciesMs };
  } finally {
    await pool.end();
  }
}

/** The peer's rounds of a workload, pooled like zapmeter's (bench/ingest.ts). */
export function peerFigures(rounds: PeerRound[]): PeerFigures {
  const accepted = rounds.reduce((n, r) => n + r.accepted, 0);
  const elapsedMs = rounds.reduce((n, r) => n + r.elapsedMs, 0);
  const latencies = rounds.flatMap((r) => r.latenciesMs);
  return {
    requests: latencies.length,
    accepted,
    elapsed_s: round(elapsedMs / 1000, 3),
    events_per_s: round(accepted / (elapsedMs / 1000), 0),
    batch_p50_ms: round(percentile(latencies, 0.5)),
    batch_p99_ms: round(percentile(latencies, 0.99)),
  };
}
