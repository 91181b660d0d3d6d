/**
 * `billing_rebills`: a client's billing days known to be stale, billed again by the next tick whatever
 * its cron window (workers/billing/schedule.ts). A client's ClientCounter marks a due day whose
 * ledger a late event changed (durable-objects/late-billing.ts); a failed run marks its clients' day,
 * so the tick retries it. A successful run of the day clears the marks it read before it read the
 * ledgers; a mark made again meanwhile is newer and stays. Until cleared, a marked client counts as
 * open: its day is not final.
 */
import { inChunks, JSON_ROWS_PER_STATEMENT } from "../chunks.ts";

export interface Rebill {
  date: string;
  client_id: string;
  marked_at: number;
}


// A mark made again is always newer than the one it replaces, even in the same millisecond (a sharded
// client's two objects): a run that read the older one clears only that one.
const MARK = `INSERT INTO billing_rebills (date, client_id, marked_at) SELECT j.value->>0, j.value->>1, ?1 FROM json_each(?2) AS j WHERE true
  ON CONFLICT (date, client_id) DO UPDATE SET marked_at = max(excluded.marked_at, billing_rebills.marked_at + 1)`;

/**
 * Marks each of `dates` of each of `clientIds` as stale, thousands of marks a statement: a replay
 * can change hundreds of a client's days in one call, and D1 counts every statement against the
 * invocation's 1,000 queries.
 */
export async function markRebills(d1: D1Database, dates: readonly string[], clientIds: readonly string[], now: number): Promise<void> {
  const marks = dates.flatMap((date) => clientIds.map((id) => [date, id]));
  const statements = inChunks(marks, JSON_ROWS_PER_STATEMENT).map((part) => d1.prepare(MARK).bind(now, JSON.stringify(part)));
  if (statements.length > 0) await d1.batch(statements);
}

/** Every mark, oldest date first (a tick plans with them). */
export async function allRebills(d1: D1Database): Promise<Rebill[]> {
  return (await d1.prepare("SELECT date, client_id, marked_at FROM billing_rebills ORDER BY date").all<Rebill>()).results;
}

/** The marks of the days from `from` to `to`. */
export async function rebillsBetween(d1: D1Database, from: string, to: string): Promise<Rebill[]> {
  return (await d1.prepare("SELECT date, client_id, marked_at FROM billing_rebills WHERE date BETWEEN ?1 AND ?2").bind(from, to).all<Rebill>()).results;
}

const CLEAR = `DELETE FROM billing_rebills WHERE (date, client_id, marked_at) IN
  (SELECT j.value->>0, j.value->>1, j.value->>2 FROM json_each(?1) AS j)`;

/**
 * Clears exactly the marks a successful run read (a newer `marked_at` is a later change, and stays),
 * thousands a statement: D1 counts each statement of a batch against an invocation's 1,000 queries,
 * and a failed run of a zone marks every client of it.
 */
export async function clearRebills(d1: D1Database, done: readonly Rebill[]): Promise<void> {
  const statements = inChunks(done, JSON_ROWS_PER_STATEMENT).map((part) => d1.prepare(CLEAR).bind(JSON.stringify(part.map((m) => [m.date, m.client_id, m.marked_at]))));
  if (statements.length > 0) await d1.batch(statements);
}
