import { SEQ_BAND } from "./client-shards.ts";
import type { Track } from "./pending-aggregates.ts";

/** Meta key of the last outbox seq written to the lake: seqs stay unique (they name lake files) after the outbox empties. */
export const FLUSHED_THROUGH_KEY = "lake_flushed_through";

/** The last outbox seq written to the lake (0 before the first flush). */
export function flushedThrough(sql: SqlStorage): number {
  return Number(sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", FLUSHED_THROUGH_KEY).toArray()[0]?.value ?? 0);
}

export type OutboxRow = {
  seq: number;
  /** Detail rows in `rows`. */
  n: number;
  /** The call's detail rows, a JSON array of EventRow. */
  rows: string;
  /** The call's ledger changes, a JSON array of LedgerDelta. */
  ledger: string;
};

const tableOf = (firstSeq: number): string => `outbox_${firstSeq}`;

/** The DDL of the outbox table whose first seq is `firstSeq`. */
export const outboxTableDdl = (firstSeq: number): string =>
  `CREATE TABLE ${tableOf(firstSeq)} (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, rows TEXT NOT NULL, ledger TEXT NOT NULL)`;
const firstSeqOf = (table: string): number => Number(table.slice("outbox_".length));

/**
 * A ClientCounter's outbox: one row per ingest call (its detail rows and ledger changes) until the
 * lake flush has written it. Rows live in generation tables `outbox_<first seq>`: ingest appends to
 * the newest one; the flush seals it (starts the next) before taking rows from it, and drops a sealed
 * table once all its rows are in the lake. A DROP TABLE writes no rows, where deleting flushed rows
 * wrote one per call again; a sealed table never changes, so a flush range cut from it is the same
 * on every retry.
 */
export class Outbox {
  /** Oldest first; the last one takes new rows. */
  private tables: string[] = [];
  private nextSeq = 1;
  /** The seq before this shard's first (0 for shard 0). */
  private bandStart = 0;

  constructor(private readonly sql: SqlStorage) {}

  /** Re-reads the tables and the next seq from SQLite (start-up, or after a rolled-back transaction). */
  load(): void {
    this.tables = this.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'outbox_[0-9]*'")
      .toArray()
      .map((r) => r.name)
      .sort((a, b) => firstSeqOf(a) - firstSeqOf(b));
    const newest = this.tables.at(-1);
    const inTables = newest ? (this.sql.exec<{ seq: number | null }>(`SELECT MAX(seq) AS seq FROM ${newest}`).one().seq ?? 0) : 0;
    // An empty newest table was started at the next seq.
    this.nextSeq = Math.max(inTables, flushedThrough(this.sql), newest ? firstSeqOf(newest) - 1 : 0, this.bandStart) + 1;
  }

  /** Numbers seqs in `shard`'s band (client-shards.ts); the object's first call names its shard. */
  useShard(shard: number): void {
    this.bandStart = shard * SEQ_BAND;
    this.nextSeq = Math.max(this.nextSeq, this.bandStart + 1);
  }

  /** Appends one call's row; returns its seq. Call inside the ingest transaction. */
  append(n: number, rows: string, ledger: string, track: Track): number {
    if (this.tables.length === 0) this.startTable(track);
    const seq = this.nextSeq++;
    track(this.sql.exec(`INSERT INTO ${this.tables.at(-1)!} (seq, n, rows, ledger) VALUES (?, ?, ?, ?)`, seq, n, rows, ledger));
    return seq;
  }

  /** Rows after `seq`, oldest first. */
  *after(seq: number): Generator<OutboxRow> {
    for (const t of this.tables) yield* this.sql.exec<OutboxRow>(`SELECT seq, n, rows, ledger FROM ${t} WHERE seq > ? ORDER BY seq`, seq);
  }

  /** Detail rows after `seq`. */
  detailRowsAfter(seq: number): number {
    let total = 0;
    for (const t of this.tables) total += this.sql.exec<{ n: number }>(`SELECT COALESCE(SUM(n), 0) AS n FROM ${t} WHERE seq > ?`, seq).one().n;
    return total;
  }

  /** The seq of the last call appended (the band's start before the first). */
  lastSeq(): number {
    return this.nextSeq - 1;
  }

  /**
   * The rows after `seq` and up to `through` of the oldest table, for the lake flush, sealing that
   * table first when it is the one ingest appends to. Empty when nothing waits.
   */
  sealedAfter(seq: number, through: number, track: Track): { seq: number; n: number }[] {
    const oldest = this.tables[0];
    if (!oldest) return [];
    const waiting = this.sql.exec<{ seq: number; n: number }>(`SELECT seq, n FROM ${oldest} WHERE seq > ? AND seq <= ? ORDER BY seq`, seq, through).toArray();
    if (waiting.length > 0 && this.tables.length === 1) this.startTable(track);
    return waiting;
  }

  /** Detail rows (JSON arrays) of seqs [first, last] of the oldest table. */
  rows(first: number, last: number): Iterable<{ rows: string }> {
    return this.sql.exec<{ rows: string }>(`SELECT rows FROM ${this.tables[0]} WHERE seq BETWEEN ? AND ? ORDER BY seq`, first, last);
  }

  /**
   * After seqs up to `last` are in the lake: drops the oldest table if it is sealed and all of it is;
   * whether it did. Call inside a transaction in which the counters hold every row of that table
   * (`aggregates_through`), as they are rebuilt from the outbox; reload if it rolls back.
   */
  markFlushed(last: number, track: Track): boolean {
    const oldest = this.tables[0];
    if (!oldest || this.tables.length === 1) return false;
    const more = this.sql.exec(`SELECT 1 FROM ${oldest} WHERE seq > ? LIMIT 1`, last).toArray().length > 0;
    if (more) return false;
    track(this.sql.exec(`DROP TABLE ${oldest}`));
    this.tables.shift();
    return true;
  }

  private startTable(track: Track): void {
    track(this.sql.exec(outboxTableDdl(this.nextSeq)));
    this.tables.push(tableOf(this.nextSeq));
  }
}
