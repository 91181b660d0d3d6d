import { DurableObject } from "cloudflare:workers";
import type { MinuteCounts, StatusCounts } from "../schema/api.ts";
import { EVENT_COLUMNS, STATUSES, type NotificationEvent, type Status } from "../schema/event.ts";
import { localDate, localDayStart, minuteOf } from "../schema/time.ts";
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

/** Billable messages of one local day, aggregated for billing. */
export interface LedgerLine {
  category: string;
  country: string;
  count: number;
}

/** Category and country keys when Meta did not say; rate cards match them through `*`. */
export const UNKNOWN_CATEGORY = "unknown";
export const UNKNOWN_COUNTRY = "ZZ";

interface BillCandidate {
  messageId: string;
  day: string;
  category: string;
  country: string;
  occurredAt: number;
}

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
  private readonly live: ClientLive;
  private readonly lake: LakeFlush;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.live = new ClientLive(ctx, env, this);
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
      this.seenTables = this.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'seen_%' ORDER BY name")
        .toArray()
        .map((r) => r.name);
      this.clientId =
        this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'client_id'").toArray()[0]?.value ?? null;
    });
    this.lake = new LakeFlush(ctx, env.LAKE, () => this.clientId);
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
      if (accepted.length === 0) return;

      track(
        this.sql.exec(
          `INSERT INTO minute_counts (minute, status, category, n)
           SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?) AS j WHERE true
           ON CONFLICT (minute, status, category) DO UPDATE SET n = n + excluded.n`,
          JSON.stringify(aggregateMinutes(accepted)),
        ),
      );
      this.recordBillable(billCandidates(accepted, client.timezone), track);
      track(
        this.sql.exec(
          "INSERT INTO outbox (n, rows) VALUES (?, ?)",
          accepted.length,
          JSON.stringify(accepted.map((e) => EVENT_COLUMNS.map((c) => e[c]))),
        ),
      );
    });

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

  /** Totals by status since local midnight in `timezone`. */
  today(timezone: string): StatusCounts {
    const start = localDayStart(localDate(Date.now(), timezone), timezone);
    return this.totals(start, Number.MAX_SAFE_INTEGER);
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
    return this.sql
      .exec<{ category: string; country: string; n: number }>(
        "SELECT category, country, n FROM ledger_daily WHERE day = ? AND n > 0 ORDER BY category, country",
        day,
      )
      .toArray()
      .map((r) => ({ category: r.category, country: r.country, count: r.n }));
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

  /**
   * A message is billed once, on its earliest delivered/read status: a later-processed but earlier
   * event (reordered delivery) moves the bill to that event's day.
   */
  private recordBillable(
    candidates: Map<string, BillCandidate>,
    track: (c: SqlStorageCursor<Record<string, SqlStorageValue>>) => void,
  ): void {
    if (candidates.size === 0) return;
    const existing = this.sql.exec<{ message_id: string; day: string; category: string; country: string; occurred_at: number }>(
      "SELECT message_id, day, category, country, occurred_at FROM ledger WHERE message_id IN (SELECT value FROM json_each(?))",
      JSON.stringify([...candidates.keys()]),
    );
    const deltas = new Map<string, number>();
    const bump = (day: string, category: string, country: string, by: number) => {
      const k = JSON.stringify([day, category, country]);
      deltas.set(k, (deltas.get(k) ?? 0) + by);
    };
    const known = new Map(existing.toArray().map((r) => [r.message_id, r]));
    const writes: BillCandidate[] = [];
    for (const c of candidates.values()) {
      const old = known.get(c.messageId);
      if (old && old.occurred_at <= c.occurredAt) continue;
      if (old) bump(old.day, old.category, old.country, -1);
      bump(c.day, c.category, c.country, 1);
      writes.push(c);
    }
    if (writes.length === 0) return;
    track(
      this.sql.exec(
        `INSERT INTO ledger (message_id, day, category, country, occurred_at)
         SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4 FROM json_each(?) AS j WHERE true
         ON CONFLICT (message_id) DO UPDATE SET day = excluded.day, category = excluded.category,
           country = excluded.country, occurred_at = excluded.occurred_at`,
        JSON.stringify(writes.map((w) => [w.messageId, w.day, w.category, w.country, w.occurredAt])),
      ),
    );
    track(
      this.sql.exec(
        `INSERT INTO ledger_daily (day, category, country, n)
         SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?) AS j WHERE true
         ON CONFLICT (day, category, country) DO UPDATE SET n = n + excluded.n`,
        JSON.stringify([...deltas].filter(([, n]) => n !== 0).map(([k, n]) => [...(JSON.parse(k) as string[]), n])),
      ),
    );
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

/** Billable delivered/read events, earliest per message, with the client's local billing day. */
function billCandidates(events: NotificationEvent[], timezone: string): Map<string, BillCandidate> {
  const out = new Map<string, BillCandidate>();
  for (const e of events) {
    if ((e.status !== "delivered" && e.status !== "read") || e.billable !== true) continue;
    const prev = out.get(e.message_id);
    if (prev && prev.occurredAt <= e.occurred_at) continue;
    out.set(e.message_id, {
      messageId: e.message_id,
      day: localDate(e.occurred_at, timezone),
      category: e.category ?? UNKNOWN_CATEGORY,
      country: e.country ?? UNKNOWN_COUNTRY,
      occurredAt: e.occurred_at,
    });
  }
  return out;
}
