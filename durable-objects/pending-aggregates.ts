import type { Status } from "../schema/event.ts";
import { minuteOf } from "../schema/time.ts";
import { COLUMN_INDEX, type EventRow } from "../workers/lake/columns.ts";
import type { Outbox } from "./outbox.ts";

export type Track = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => void;
/** A change of one `ledger_daily` line: [day, category, country, by]. */
export type LedgerDelta = [day: string, category: string, country: string, by: number];
/** A change of one minute's count of a status and category: [minute, status, category, by]. */
type MinuteDelta = [minute: number, status: string, category: string, by: number];
/** `minute_totals.counts`: a minute's counts by status, then category ("" when Meta sent none). */
type MinuteCounters = Record<string, Record<string, number>>;

/**
 * Counter changes are upserted when the outbox goes to the lake (at most a minute after an ingest,
 * lake-flush.ts), or sooner once this many distinct lines wait (bounds memory and one upsert's size).
 * Upserting per call would rewrite a client's minute and ledger lines on every webhook (1–10
 * statuses each): several rows per call where the event rows are one per status.
 */
const MAX_PENDING_LINES = 2_000;
/** Meta key: the highest outbox seq whose changes are in the SQLite counters. */
export const AGGREGATES_THROUGH_KEY = "aggregates_through";

/** The highest outbox seq whose changes the SQLite counters hold (0 before the first flush). */
export function aggregatesThrough(sql: SqlStorage): number {
  return Number(sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", AGGREGATES_THROUGH_KEY).toArray()[0]?.value ?? 0);
}

/**
 * The counter changes (`minute_totals`, `ledger_daily`) of the calls since the last flush, kept in
 * memory and merged into every read. They are durable all along: each call's outbox row holds its
 * detail rows and ledger changes, and `restore` rebuilds this state from the outbox rows after
 * `aggregates_through`. A flush upserts the changes and moves `aggregates_through` in the same
 * transaction, so a change is never counted twice or lost.
 */
export class PendingAggregates {
  private readonly minutes = new Map<string, MinuteDelta>();
  private readonly ledger = new Map<string, LedgerDelta>();
  /** Highest outbox seq whose changes are held here (or already flushed). */
  private through = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly outbox: Outbox,
  ) {}

  /** Re-reads what SQLite has not absorbed yet: the outbox rows after `aggregates_through`. */
  restore(): void {
    this.minutes.clear();
    this.ledger.clear();
    this.through = aggregatesThrough(this.sql);
    for (const r of this.outbox.after(this.through)) this.add(r.seq, JSON.parse(r.rows) as EventRow[], JSON.parse(r.ledger) as LedgerDelta[]);
  }

  /** Adds the changes of outbox row `seq` (its detail rows and ledger changes). */
  add(seq: number, rows: EventRow[], ledger: LedgerDelta[]): void {
    for (const row of rows) {
      const minute = minuteOf(row[COLUMN_INDEX.occurred_at] as number);
      const status = row[COLUMN_INDEX.status] as string;
      const category = (row[COLUMN_INDEX.category] as string | null) ?? "";
      bump(this.minutes, `${minute}|${status}|${category}`, [minute, status, category, 1]);
    }
    for (const [day, category, country, by] of ledger) bump(this.ledger, `${day}|${category}|${country}`, [day, category, country, by]);
    this.through = Math.max(this.through, seq);
  }

  /** Whether so many lines wait that the caller should flush now rather than with the outbox. */
  full(): boolean {
    return this.minutes.size + this.ledger.size >= MAX_PENDING_LINES;
  }

  /** Upserts every pending change and moves `aggregates_through`; call inside a transaction. */
  flush(track: Track): void {
    if (this.minutes.size + this.ledger.size === 0) return;
    if (this.minutes.size > 0) {
      track(
        this.sql.exec(
          `INSERT INTO minute_totals (minute, counts) SELECT j.value->>0, j.value->>1 FROM json_each(?) AS j WHERE true
           ON CONFLICT (minute) DO UPDATE SET counts = excluded.counts`,
          JSON.stringify(this.mergedMinutes()),
        ),
      );
    }
    const ledger = [...this.ledger.values()].filter((l) => l[3] !== 0);
    if (ledger.length > 0) {
      track(
        this.sql.exec(
          `INSERT INTO ledger_daily (day, category, country, n)
           SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?) AS j WHERE true
           ON CONFLICT (day, category, country) DO UPDATE SET n = n + excluded.n`,
          JSON.stringify(ledger),
        ),
      );
    }
    track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", AGGREGATES_THROUGH_KEY, String(this.through)));
    this.minutes.clear();
    this.ledger.clear();
  }

  /** The stored `minute_totals` rows of the pending minutes with the pending changes added: [minute, counts JSON]. */
  private mergedMinutes(): [number, string][] {
    const byMinute = new Map<number, MinuteCounters>();
    const minutes = [...new Set([...this.minutes.values()].map(([minute]) => minute))];
    for (const r of this.sql.exec<{ minute: number; counts: string }>("SELECT minute, counts FROM minute_totals WHERE minute IN (SELECT value FROM json_each(?))", JSON.stringify(minutes))) {
      byMinute.set(r.minute, JSON.parse(r.counts) as MinuteCounters);
    }
    for (const [minute, status, category, by] of this.minutes.values()) {
      let counts = byMinute.get(minute);
      if (!counts) byMinute.set(minute, (counts = {}));
      const byCategory = (counts[status] ??= {});
      byCategory[category] = (byCategory[category] ?? 0) + by;
    }
    return [...byMinute].map(([minute, counts]) => [minute, JSON.stringify(counts)]);
  }

  /** Pending counts per minute, status and category ("" for none) in [from, to). */
  *countsIn(from: number, to: number): Generator<{ minute: number; status: Status; category: string; n: number }> {
    for (const [minute, status, category, n] of this.minutes.values()) {
      if (minute >= from && minute < to) yield { minute, status: status as Status, category, n };
    }
  }

  /** Pending ledger changes of `days`. */
  *ledgerOf(days: Set<string>): Generator<{ day: string; category: string; country: string; n: number }> {
    for (const [day, category, country, n] of this.ledger.values()) if (days.has(day)) yield { day, category, country, n };
  }
}

function bump<T extends [unknown, unknown, unknown, number]>(lines: Map<string, T>, key: string, delta: T): void {
  const line = lines.get(key);
  if (line) line[3] += delta[3];
  else lines.set(key, delta);
}
