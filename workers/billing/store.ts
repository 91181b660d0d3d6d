import type { BillingLine } from "../../schema/billing.ts";
import { inChunks, JSON_ROWS_PER_STATEMENT } from "../chunks.ts";

/**
 * billing_daily and billing_runs in D1. Bulk writes pass their rows as one JSON parameter read with
 * json_each, so a statement carries thousands of lines while D1 allows 100 bound parameters.
 */

/** A stored line without the client's name (names are joined at read time). */
export interface StoredLine {
  clientId: string;
  category: string;
  country: string;
  billableCount: number;
  unitPriceMicros: number;
  amountMicros: number;
  currency: string;
}

export interface DayState {
  /** 0 when the day was never computed. */
  revision: number;
  /** When the current revision was first produced (epoch ms), null when never computed. */
  computedAt: number | null;
  /**
   * When the latest successful run began (epoch ms), null when never computed: the day's lines are
   * as of then, a run that changed nothing confirming them.
   */
  checkedAt: number | null;
}

export interface RunRecord {
  date: string;
  trigger: "cron" | "manual";
  startedAt: number;
  finishedAt: number;
  clients: number;
  lines: number;
}


/** Identity of a line within a day (client × category × country). */
export function lineKey(l: { clientId: string; category: string; country: string }): string {
  return `${l.clientId}\u0000${l.category}\u0000${l.country}`;
}

const CURRENT_REVISION = "SELECT COALESCE(MAX(revision), 0) AS revision FROM billing_runs WHERE date = ?1 AND status = 'ok'";

/** The day's current revision and when it was produced, from its successful runs. */
export async function dayState(d1: D1Database, date: string): Promise<DayState> {
  return (await periodStates(d1, date, date)).get(date) ?? { revision: 0, computedAt: null, checkedAt: null };
}

/**
 * Each computed day of a period: its current revision, when that revision's first run finished
 * (computed) and when the latest run at it began (checked: a run that changes nothing still confirms
 * the lines; one recorded at an older revision, after a concurrent change, does not).
 */
export async function periodStates(d1: D1Database, from: string, to: string): Promise<Map<string, DayState>> {
  return periodStatesOf((await periodStatesQuery(d1, from, to).all<PeriodStateRow>()).results);
}

export type PeriodStateRow = { date: string; revision: number; computed_at: number; checked_at: number };

/** `periodStates` as a statement, to read in one batch (one transaction) with what it describes. */
export function periodStatesQuery(d1: D1Database, from: string, to: string): D1PreparedStatement {
  return d1
    .prepare(
      `SELECT r.date, r.revision, MIN(r.finished_at) AS computed_at, MAX(r.started_at) AS checked_at
       FROM billing_runs r
       JOIN (SELECT date, MAX(revision) AS revision FROM billing_runs WHERE date BETWEEN ?1 AND ?2 AND status = 'ok' GROUP BY date) cur
         ON cur.date = r.date AND cur.revision = r.revision
       WHERE r.status = 'ok'
       GROUP BY r.date`,
    )
    .bind(from, to);
}

export function periodStatesOf(rows: PeriodStateRow[]): Map<string, DayState> {
  return new Map(rows.map((r) => [r.date, { revision: r.revision, computedAt: r.computed_at, checkedAt: r.checked_at }]));
}

/** The stored lines of `date` for the given clients. */
export async function storedLines(d1: D1Database, date: string, clientIds: string[]): Promise<StoredLine[]> {
  const out: StoredLine[] = [];
  for (const part of inChunks(clientIds, JSON_ROWS_PER_STATEMENT)) {
    const { results } = await d1
      .prepare(
        `SELECT client_id AS clientId, category, country, billable_count AS billableCount,
           unit_price_micros AS unitPriceMicros, amount_micros AS amountMicros, currency
         FROM billing_daily WHERE date = ?1 AND client_id IN (SELECT value FROM json_each(?2))`,
      )
      .bind(date, JSON.stringify(part))
      .all<StoredLine>();
    out.push(...results);
  }
  return out;
}

/** A day's lines with client names, ordered by client, category, country (the file order). */
export function dayLinesQuery(d1: D1Database, date: string, clientId?: string): D1PreparedStatement {
  return d1
    .prepare(
      `SELECT b.client_id, COALESCE(c.name, b.client_id) AS client_name, b.category, b.country, b.billable_count,
         b.unit_price_micros, b.amount_micros, b.currency
       FROM billing_daily b LEFT JOIN clients c ON c.id = b.client_id
       WHERE b.date = ?1 AND (?2 IS NULL OR b.client_id = ?2)
       ORDER BY b.client_id, b.category, b.country`,
    )
    .bind(date, clientId ?? null);
}

/** A day's lines with the revision they make up. */
export interface RevisionLines {
  revision: number;
  lines: BillingLine[];
}

/**
 * The day's lines and its current revision, read in one D1 batch (one transaction), so the lines are
 * that revision's even while another run commits the next one.
 */
export async function currentRevisionLines(d1: D1Database, date: string): Promise<RevisionLines> {
  const [revision, lines] = await d1.batch<unknown>([d1.prepare(CURRENT_REVISION).bind(date), dayLinesQuery(d1, date)]);
  return { revision: (revision!.results[0] as { revision: number }).revision, lines: lines!.results as BillingLine[] };
}

/** A period's lines summed per client and currency (amounts in different currencies do not add up). */
export interface PeriodSum {
  client_id: string;
  client_name: string;
  currency: string;
  billable_count: number;
  amount_micros: number;
}

/** Sums of a period's lines per client and currency, as a statement (read with the days' states). */
export function periodSumsQuery(d1: D1Database, from: string, to: string, clientId?: string): D1PreparedStatement {
  return d1
    .prepare(
      `SELECT b.client_id, COALESCE(c.name, b.client_id) AS client_name, b.currency,
         SUM(b.billable_count) AS billable_count, SUM(b.amount_micros) AS amount_micros
       FROM billing_daily b LEFT JOIN clients c ON c.id = b.client_id
       WHERE b.date BETWEEN ?1 AND ?2 AND (?3 IS NULL OR b.client_id = ?3)
       GROUP BY b.client_id, b.currency ORDER BY b.client_id, b.currency`,
    )
    .bind(from, to, clientId ?? null);
}

/** Records a run that changed nothing (the revision stays). */
export async function recordRun(d1: D1Database, run: RunRecord, revision: number): Promise<void> {
  await runInsert(d1, run, revision, null).run();
}

/** Records a run that failed before committing anything (the error text, truncated). */
export async function recordFailedRun(d1: D1Database, run: RunRecord, error: string): Promise<void> {
  await d1
    .prepare(
      `INSERT INTO billing_runs (date, trigger, started_at, finished_at, status, clients, lines, error)
       VALUES (?1, ?2, ?3, ?4, 'failed', ?5, ?6, ?7)`,
    )
    .bind(run.date, run.trigger, run.startedAt, run.finishedAt, run.clients, run.lines, error.slice(0, 1000))
    .run();
}

/** A successful run's row; with `guard`, its status is NULL unless the day's revision is still `guard`. */
function runInsert(d1: D1Database, run: RunRecord, revision: number, guard: number | null): D1PreparedStatement {
  return d1
    .prepare(
      `INSERT INTO billing_runs (date, trigger, started_at, finished_at, status, clients, lines, revision)
       VALUES (?1, ?2, ?3, ?4, CASE WHEN ?8 IS NULL OR (${CURRENT_REVISION}) = ?8 THEN 'ok' END, ?5, ?6, ?7)`,
    )
    .bind(run.date, run.trigger, run.startedAt, run.finishedAt, run.clients, run.lines, revision, guard);
}

/**
 * Writes changed lines and deletions as revision `expected + 1`, atomically (a D1 batch is one
 * transaction). Returns false when another run moved the day's revision first: the run's status is
 * then NULL, which the NOT NULL constraint refuses, and the whole batch rolls back. A batch that
 * committed though D1's answer was lost returns true, found by its run's row.
 */
export async function commitRevision(
  d1: D1Database,
  run: RunRecord,
  expected: number,
  upserts: StoredLine[],
  deletes: StoredLine[],
): Promise<boolean> {
  const revision = expected + 1;
  const statements = [runInsert(d1, run, revision, expected)];
  for (const part of inChunks(upserts, JSON_ROWS_PER_STATEMENT)) {
    const rows = part.map((l) => [l.clientId, l.category, l.country, l.billableCount, l.unitPriceMicros, l.amountMicros, l.currency]);
    statements.push(
      d1
        .prepare(
          `INSERT INTO billing_daily (date, client_id, category, country, billable_count, unit_price_micros, amount_micros,
             currency, revision, computed_at)
           SELECT ?1, j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, j.value->>6, ?2, ?3
           FROM json_each(?4) AS j WHERE true
           ON CONFLICT (date, client_id, category, country) DO UPDATE SET billable_count = excluded.billable_count,
             unit_price_micros = excluded.unit_price_micros, amount_micros = excluded.amount_micros,
             currency = excluded.currency, revision = excluded.revision, computed_at = excluded.computed_at`,
        )
        .bind(run.date, revision, run.finishedAt, JSON.stringify(rows)),
    );
  }
  for (const part of inChunks(deletes, JSON_ROWS_PER_STATEMENT)) {
    statements.push(
      d1
        .prepare(
          // Looked up by the primary key from the list: an EXISTS per row scanned the list for each of
          // the day's ~60,000 lines (16 s for 1,000 deletions, inside the commit's transaction).
          `DELETE FROM billing_daily WHERE (date, client_id, category, country) IN
             (SELECT ?1, j.value->>0, j.value->>1, j.value->>2 FROM json_each(?2) AS j)`,
        )
        .bind(run.date, JSON.stringify(part.map((l) => [l.clientId, l.category, l.country]))),
    );
  }
  try {
    await d1.batch(statements);
    return true;
  } catch (err) {
    const now = (await dayState(d1, run.date)).revision;
    if (now === expected) throw err;
    // The batch may have committed and only its answer been lost: then the revision is this run's.
    return now === revision && (await committedRun(d1, run, revision));
  }
}

/** Whether `run`'s own row is the successful one at `revision`. */
async function committedRun(d1: D1Database, run: RunRecord, revision: number): Promise<boolean> {
  const row = await d1
    .prepare(
      `SELECT 1 FROM billing_runs WHERE date = ?1 AND revision = ?2 AND status = 'ok' AND trigger = ?3 AND started_at = ?4
         AND finished_at = ?5 AND clients = ?6 AND lines = ?7`,
    )
    .bind(run.date, revision, run.trigger, run.startedAt, run.finishedAt, run.clients, run.lines)
    .first();
  return row !== null;
}
