import { DurableObject } from "cloudflare:workers";
import type { MinuteCounts, StatusCounts } from "../schema/api.ts";
import { EVENT_COLUMNS, STATUSES, type NotificationEvent, type Status } from "../schema/event.ts";
import { localDate, localDayStart, minuteOf } from "../schema/time.ts";
import { BillableLedger, type LedgerLine } from "./billable-ledger.ts";
import { SCHEMA, seenTableExpired, seenTableFor } from "./client-counter-tables.ts";
import { LakeFlush } from "./lake-flush.ts";
import { ClientLive } from "./client-live.ts";
import { closeQuietly } from "./live-sockets.ts";
import type { ClientRollup } from "./overview.ts";

/** What the ingest Worker knows about the client when it calls. */
export interface ClientRef {
  id: string;
  timezone: string;
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
  /** SQLite rows written by this call (billing unit), for benchmarks and capacity planning. */
  rowsWritten: number;
  rowsRead: number;
}

export { UNKNOWN_CATEGORY, UNKNOWN_COUNTRY, type LedgerLine } from "./billable-ledger.ts";

export function emptyCounts(): StatusCounts {
  return { accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
}

/**
 * One per client (`idFromName(client_id)`). Deduplicates events, keeps per-minute counters, the
 * billable-message ledger and the outbox of detail rows, all in one SQLite transaction per call.
 */
export class ClientCounter extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private seenTables: string[] = [];
  private clientId: string | null = null;
  private ledger!: BillableLedger;
  /** Today's totals in one time zone, summed once and then incremented by ingest (see `today`). */
  private todayTotals: { timezone: string; day: string; start: number; counts: StatusCounts } | null = null;
  private readonly live: ClientLive;
  private readonly lake: LakeFlush;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.live = new ClientLive(ctx, env, this);
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
      this.loadState();
    });
    this.lake = new LakeFlush(ctx, env.LAKE, () => this.clientId);
  }

  /** In-memory mirrors of what SQLite holds: the dedup and ledger tables, the client id. */
  private loadState(): void {
    this.ledger = new BillableLedger(this.sql);
    this.seenTables = this.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'seen_%' ORDER BY name")
      .toArray()
      .map((r) => r.name);
    this.clientId = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'client_id'").toArray()[0]?.value ?? null;
  }

  /**
   * Records a batch of canonical events of this client. Returns after the transaction has committed,
   * so a 2xx upstream means the events are durable.
   */
  ingest(client: ClientRef, events: NotificationEvent[]): IngestResult {
    const now = Date.now();
    let rowsWritten = 0;
    let rowsRead = 0;
    const track = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => {
      cursor.toArray();
      rowsWritten += cursor.rowsWritten;
      rowsRead += cursor.rowsRead;
    };
    let accepted: NotificationEvent[] = [];

    try {
      this.ctx.storage.transactionSync(() => {
        if (this.clientId !== client.id) {
          track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('client_id', ?)", client.id));
          this.clientId = client.id;
        }
        const current = this.ensureSeenTable(now, track);
        const older = this.seenTables.filter((t) => t !== current);
        const notInOlder = older.map((t) => `AND NOT EXISTS (SELECT 1 FROM ${t} WHERE event_id = j.value)`).join(" ");
        const inserted = this.sql.exec<{ event_id: string }>(
          `INSERT INTO ${current} (event_id) SELECT j.value FROM json_each(?) AS j WHERE true ${notInOlder}
           ON CONFLICT DO NOTHING RETURNING event_id`,
          JSON.stringify(events.map((e) => e.event_id)),
        );
        const fresh = new Set(inserted.toArray().map((r) => r.event_id));
        rowsWritten += inserted.rowsWritten;
        rowsRead += inserted.rowsRead;
        // Keep the first occurrence of each newly seen id; later copies in the same batch are duplicates.
        accepted = events.filter((e) => fresh.delete(e.event_id));
        // An id stored but not matched back would be lost for good (its retries count as duplicates):
        // fail the call, which rolls the transaction back, instead.
        if (fresh.size > 0) throw new Error(`dedup ids did not round-trip through SQLite (${fresh.size})`);
        if (accepted.length === 0) return;

        track(
          this.sql.exec(
            `INSERT INTO minute_counts (minute, status, category, n)
             SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?) AS j WHERE true
             ON CONFLICT (minute, status, category) DO UPDATE SET n = n + excluded.n`,
            JSON.stringify(aggregateMinutes(accepted)),
          ),
        );
        this.ledger.record(accepted, client.timezone, track);
        track(
          this.sql.exec(
            "INSERT INTO outbox (n, rows) VALUES (?, ?)",
            accepted.length,
            JSON.stringify(accepted.map((e) => EVENT_COLUMNS.map((c) => e[c]))),
          ),
        );
      });
    } catch (err) {
      // The transaction rolled back: tables it created or dropped are as before, so re-read them.
      this.loadState();
      throw err;
    }

    if (this.todayTotals) for (const e of accepted) if (e.occurred_at >= this.todayTotals.start) this.todayTotals.counts[e.status] += 1;
    this.live.changed(client, accepted);
    this.lake.noteIngested(accepted.length);
    return { accepted: accepted.length, duplicates: events.length - accepted.length, rowsWritten, rowsRead };
  }

  /** WebSocket upgrade for `/v1/clients/:id/live`, authorised by the Worker (durable-objects/client-live.ts). */
  override fetch(request: Request): Response {
    return this.live.upgrade(request);
  }

  override webSocketMessage(): void {
    // Viewers only listen; keep-alive pings are answered by the runtime's auto-response.
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    closeQuietly(ws, code, reason);
  }

  /** The Overview asks for this when it has never heard from the client. */
  liveRollup(clientId: string, timezone: string): ClientRollup {
    return this.live.rollup(clientId, timezone);
  }

  /** Writes the outbox to the R2 lake as Parquet (durable-objects/lake-flush.ts). */
  override alarm(): Promise<void> {
    return this.lake.alarm();
  }

  /** Flushes the whole outbox now (`POST /v1/admin/flush`); returns the keys written. */
  flush(): Promise<string[]> {
    return this.lake.flush();
  }

  /** Per-minute counts by status in [from, to), one entry per minute that has events. */
  counters(from: number, to: number): MinuteCounts[] {
    const byMinute = new Map<number, MinuteCounts>();
    const rows = this.sql.exec<{ minute: number; status: Status; n: number }>(
      "SELECT minute, status, SUM(n) AS n FROM minute_counts WHERE minute >= ? AND minute < ? GROUP BY minute, status ORDER BY minute",
      from,
      to,
    );
    for (const r of rows) {
      let m = byMinute.get(r.minute);
      if (!m) byMinute.set(r.minute, (m = { minute: r.minute, ...emptyCounts() }));
      m[r.status] += r.n;
    }
    return [...byMinute.values()];
  }

  /**
   * Totals by status since local midnight in `timezone`. Summed from SQLite once per local day (or
   * after a wake) and then kept up to date by ingest: live updates and rollups ask several times a
   * second, and re-summing the day's minute rows each time would read thousands of rows per call.
   */
  today(timezone: string): StatusCounts {
    const day = localDate(Date.now(), timezone);
    if (this.todayTotals?.timezone !== timezone || this.todayTotals.day !== day) {
      const start = localDayStart(day, timezone);
      this.todayTotals = { timezone, day, start, counts: this.totals(start, Number.MAX_SAFE_INTEGER) };
    }
    return { ...this.todayTotals.counts };
  }

  /** Totals by status in [from, to). */
  totals(from: number, to: number): StatusCounts {
    const out = emptyCounts();
    const rows = this.sql.exec<{ status: Status; n: number }>(
      "SELECT status, SUM(n) AS n FROM minute_counts WHERE minute >= ? AND minute < ? GROUP BY status",
      from,
      to,
    );
    for (const r of rows) if (STATUSES.includes(r.status)) out[r.status] = r.n;
    return out;
  }

  /** Billable messages of the client's local `day` (YYYY-MM-DD), by category and country. */
  ledgerLines(day: string): LedgerLine[] {
    return this.ledger.linesByDay([day])[day]!;
  }

  /** `ledgerLines` for several days in one call (a billing tick recomputes a few days per client). */
  ledgerLinesByDay(days: string[]): Record<string, LedgerLine[]> {
    return this.ledger.linesByDay(days);
  }

  private ensureSeenTable(now: number, track: (c: SqlStorageCursor<Record<string, SqlStorageValue>>) => void): string {
    const current = seenTableFor(now);
    if (this.seenTables.at(-1) !== current) {
      track(this.sql.exec(`CREATE TABLE IF NOT EXISTS ${current} (event_id TEXT PRIMARY KEY) WITHOUT ROWID`));
      for (const t of this.seenTables.filter((t) => seenTableExpired(t, now))) track(this.sql.exec(`DROP TABLE ${t}`));
      this.seenTables = [...this.seenTables.filter((t) => !seenTableExpired(t, now)), current];
    }
    return current;
  }
}

/** Counts per minute × status × category, as rows for one upsert. */
function aggregateMinutes(events: NotificationEvent[]): [number, string, string, number][] {
  const counts = new Map<string, [number, string, string, number]>();
  for (const e of events) {
    const minute = minuteOf(e.occurred_at);
    const category = e.category ?? "";
    const k = `${minute}|${e.status}|${category}`;
    const row = counts.get(k);
    if (row) row[3]++;
    else counts.set(k, [minute, e.status, category, 1]);
  }
  return [...counts.values()];
}
