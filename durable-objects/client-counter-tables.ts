import { DAY_MS } from "../schema/time.ts";
import { FLUSHED_THROUGH_KEY, outboxTableDdl } from "./outbox.ts";
import { AGGREGATES_THROUGH_KEY } from "./pending-aggregates.ts";

/**
 * The ClientCounter's SQLite layout.
 *
 * Rows written are what Cloudflare bills, so the layout is shaped around them (docs/capacity.md):
 * - each accepted event writes exactly one row, in the event table of its UTC receive-month
 *   (`events_YYYYMM`). That row is the dedup entry and, for the one status a message is billed on,
 *   the billable-ledger entry too (billable-ledger.ts): keyed (message_id, event id), so "was this
 *   message billed?" is a key-prefix read, not a second table or index;
 * - expiry is a DROP TABLE of a month past retention, which writes no rows (a retention DELETE would
 *   write every row a second time);
 * - each call (each group of calls that reached the object together) writes one outbox row holding
 *   all of its detail rows and its ledger changes; flushed rows go with their whole table
 *   (outbox.ts), again a DROP TABLE;
 * - the counters (`minute_totals`, `ledger_daily`) are aggregated in memory and upserted when the
 *   outbox goes to the lake (pending-aggregates.ts); the outbox rows after `aggregates_through` are
 *   what they have not absorbed yet, so a restart rebuilds the in-memory part from them;
 * - a minute's counters by status and category are one row (`counts`: JSON status → category → n),
 *   so a flush writes a row per minute that had events, not one per status × category of it
 *   (a quiet client's flush wrote ~20 counter rows for a minute's few dozen events).
 */

/**
 * Receive-months kept besides the current one: dedup covers at least this many months (Meta retries
 * for 7 days), and a message's billed status is remembered as long, so a read receipt weeks after
 * delivery is not billed again.
 */
export const EVENT_RETENTION_MONTHS = 2;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS minute_totals (minute INTEGER PRIMARY KEY, counts TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_daily (
  day TEXT NOT NULL, category TEXT NOT NULL, country TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (day, category, country)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** Identity of an event row: (message_id, event_id), the event tables' key, as one string. */
export const eventKey = (messageId: string, eventId: string): string => `${messageId}\u0000${eventId}`;

/**
 * An event table and the column its key's second part is in: `event_ref` (the compact form below) in
 * tables created since 2026-11-30, `event_id` (the id whole) in the ones before, which live out their
 * retention as they are.
 */
export interface EventTable {
  name: string;
  idColumn: "event_ref" | "event_id";
}

/**
 * The event id as an `event_ref` column holds it. A WhatsApp event id is `${wamid}:${status}`, so the
 * whole id repeated the ~60-character wamid that `message_id` already holds: stored as U+007F and the
 * part after the prefix, an event row takes ~98 bytes instead of ~175 (measured in workerd, 30,000
 * rows of real-length wamids). Ids without that prefix (Kafka producers' own) are kept whole; no
 * accepted id contains U+007F (control characters are refused), so the two forms cannot meet. U+007F
 * rather than a C0 control: JSON text carries it as it is, where those need a `\u` escape that
 * SQLite's JSON reader then decodes on every row.
 */
export function storedEventRef(messageId: string, eventId: string): string {
  return eventId.length > messageId.length && eventId.startsWith(messageId) && eventId[messageId.length] === ":"
    ? `${REF_MARK}${eventId.slice(messageId.length + 1)}`
    : eventId;
}

/** The event id a stored id stands for (the inverse of `storedEventRef`; a whole id is itself). */
export function eventIdOf(messageId: string, stored: string): string {
  return stored.startsWith(REF_MARK) ? `${messageId}:${stored.slice(1)}` : stored;
}

/** Starts an `event_ref` that stands for `${message_id}:` and the rest. */
const REF_MARK = "\u007f";

/**
 * SQL for the value of `table`'s id column from `ref`, an `event_ref` (SQL text) of the message
 * `messageId`: itself, or in a table of whole ids the id it stands for.
 */
export function storedIdSql(table: EventTable, messageId: string, ref: string): string {
  if (table.idColumn === "event_ref") return ref;
  return `(CASE WHEN substr(${ref}, 1, 1) = char(${REF_MARK.charCodeAt(0)}) THEN (${messageId}) || ':' || substr(${ref}, 2) ELSE ${ref} END)`;
}

/** Columns of an event table: the billing ones are set only on the row a message is billed on. */
export function eventTableDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
    message_id TEXT NOT NULL, event_ref TEXT NOT NULL,
    billed_day TEXT, category TEXT, country TEXT, billed_at INTEGER,
    PRIMARY KEY (message_id, event_ref)
  ) WITHOUT ROWID`;
}

/** The object's event tables, oldest first, each with the column its ids are in. */
export function eventTablesIn(sql: SqlStorage): EventTable[] {
  return sql
    .exec<{ name: string; compact: number }>(
      "SELECT name, instr(sql, 'event_ref') > 0 AS compact FROM sqlite_master WHERE type = 'table' AND name GLOB 'events_[0-9]*' ORDER BY name",
    )
    .toArray()
    .map((r) => ({ name: r.name, idColumn: r.compact ? "event_ref" : "event_id" }));
}

/** Name of the event table for the UTC month containing `ms`. */
export function eventTableFor(ms: number): string {
  const d = new Date(ms);
  return `events_${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** Whether an `events_YYYYMM` table is past retention at `now`. */
export function eventTableExpired(table: string, now: number): boolean {
  const d = new Date(now);
  const oldest = d.getUTCFullYear() * 12 + d.getUTCMonth() - EVENT_RETENTION_MONTHS;
  return Number(table.slice(7, 11)) * 12 + Number(table.slice(11, 13)) - 1 < oldest;
}

/** Meta retries an unacknowledged webhook for up to this long, repeating the events it carried. */
const REDELIVERY_MS = 7 * DAY_MS;

/**
 * Whether input received from `receivedFrom` on can be run again without counting an event twice:
 * a Meta retry among it may repeat events first stored a week earlier, in the month before.
 */
export function dedupCovers(receivedFrom: number, now: number): boolean {
  return !eventTableExpired(eventTableFor(receivedFrom - REDELIVERY_MS), now);
}

/**
 * Brings the single `outbox` table of objects created before 2026-11-29 18:00 into the generation
 * tables (outbox.ts), as the oldest one. The first of those objects (before 2026-11-29) also lack
 * the outbox's `ledger` column: their outbox rows' counters are already in the counter tables (they
 * were upserted per call), and their seqs came from AUTOINCREMENT, whose high-water mark must stay
 * the floor so lake file names are never reused. (Their `seen_YYYYMMDD`/`ledger_YYYYMM` tables are
 * not read any more: no deployment had that layout.)
 */
export function upgradeLegacyOutbox(sql: SqlStorage): void {
  const columns = sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('outbox')").toArray().map((c) => c.name);
  if (columns.length === 0) return;
  if (!columns.includes("ledger")) {
    sql.exec("ALTER TABLE outbox ADD COLUMN ledger TEXT NOT NULL DEFAULT '[]'");
    sql.exec("INSERT OR REPLACE INTO meta (key, value) SELECT ?, COALESCE(MAX(seq), 0) FROM outbox", AGGREGATES_THROUGH_KEY);
    const highWater = sql.exec<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").toArray()[0]?.seq ?? 0;
    const waiting = sql.exec<{ newest: number | null }>("SELECT MAX(seq) AS newest FROM outbox").one().newest;
    // The mark is the floor of new seqs: as the flushed-through seq when nothing waits, else as an
    // empty newest table named after it, so the rows waiting below it are still flushed.
    if (waiting === null) sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", FLUSHED_THROUGH_KEY, String(highWater));
    else if (highWater > waiting) sql.exec(outboxTableDdl(highWater + 1));
  }
  sql.exec("ALTER TABLE outbox RENAME TO outbox_0");
}

/**
 * Brings `minute_counts` (a row per minute × status × category, before 2026-11-29 18:00) into
 * `minute_totals`, a row per minute, and drops it; in one transaction with the object's start-up.
 */
export function upgradeMinuteCounts(sql: SqlStorage): void {
  if (sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'minute_counts'").toArray().length === 0) return;
  sql.exec(
    `INSERT INTO minute_totals (minute, counts)
     SELECT minute, json_group_object(status, json(categories)) FROM (
       SELECT minute, status, json_group_object(category, n) AS categories FROM minute_counts GROUP BY minute, status
     ) GROUP BY minute`,
  );
  sql.exec("DROP TABLE minute_counts");
}
