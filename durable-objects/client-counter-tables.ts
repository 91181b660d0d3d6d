import { DAY_MS, utcDate } from "../schema/time.ts";

/**
 * The ClientCounter's SQLite layout.
 *
 * Rows written are what Cloudflare bills, so the layout is shaped around them:
 * - dedup ids live in one table per UTC receive-day (`seen_YYYYMMDD`); expiry is a DROP TABLE, which
 *   writes no rows, where a retention DELETE would write one row per event a second time;
 * - counters are aggregated per call (one upsert per minute × status × category);
 * - billed message ids live in one table per billing month (billable-ledger.ts), dropped the same way;
 * - the outbox holds one row per call with all of that call's detail rows.
 */
export const DEDUP_RETENTION_DAYS = 9;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS minute_counts (
  minute INTEGER NOT NULL, status TEXT NOT NULL, category TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (minute, status, category)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_daily (
  day TEXT NOT NULL, category TEXT NOT NULL, country TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (day, category, country)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, rows TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** Name of the dedup table for the UTC day containing `ms`. */
export function seenTableFor(ms: number): string {
  return `seen_${utcDate(ms).replaceAll("-", "")}`;
}

/** Whether a `seen_YYYYMMDD` table is past retention at `now`. */
export function seenTableExpired(table: string, now: number): boolean {
  const d = table.slice(5);
  const dayStart = Date.UTC(Number(d.slice(0, 4)), Number(d.slice(4, 6)) - 1, Number(d.slice(6, 8)));
  return dayStart < now - DEDUP_RETENTION_DAYS * DAY_MS;
}
