import type { NotificationEvent } from "../schema/event.ts";
import { localDate } from "../schema/time.ts";

/** Category and country keys when Meta did not say; rate cards match them through `*`. */
export const UNKNOWN_CATEGORY = "unknown";
export const UNKNOWN_COUNTRY = "ZZ";

/** Months of ledger partitions kept besides the current one (a message's statuses span days, not months). */
const LEDGER_RETENTION_MONTHS = 2;

/** Billable messages of one local day, aggregated for billing. */
export interface LedgerLine {
  category: string;
  country: string;
  count: number;
}

interface BillCandidate {
  messageId: string;
  day: string;
  category: string;
  country: string;
  occurredAt: number;
}

type Track = (cursor: SqlStorageCursor<Record<string, SqlStorageValue>>) => void;

const partitionOf = (day: string) => `ledger_${day.slice(0, 7).replace("-", "")}`;

/** `ledger_YYYYMM` names older than the retention window at `now`. */
function expired(table: string, now: number): boolean {
  const d = new Date(now);
  const oldest = d.getUTCFullYear() * 12 + d.getUTCMonth() - LEDGER_RETENTION_MONTHS;
  const ym = Number(table.slice(7, 11)) * 12 + Number(table.slice(11, 13)) - 1;
  return ym < oldest;
}

/**
 * The billable-message ledger of one client: a message is billed once, on its earliest delivered/read
 * status with billable pricing, in the client's local day. Entries live in one table per billing month
 * (`ledger_YYYYMM`, expired by DROP TABLE, which writes no rows); `ledger_daily` keeps the per-day
 * aggregates billing reads.
 */
export class BillableLedger {
  private partitions: string[];

  constructor(private readonly sql: SqlStorage) {
    this.partitions = sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'ledger_[0-9]*' ORDER BY name")
      .toArray()
      .map((r) => r.name);
  }

  /** Records the billable events among `events` (already deduplicated) inside the caller's transaction. */
  record(events: NotificationEvent[], timezone: string, track: Track): void {
    const candidates = billCandidates(events, timezone);
    if (candidates.size === 0) return;
    const ids = JSON.stringify([...candidates.keys()]);
    const known = new Map<string, { day: string; category: string; country: string; occurred_at: number; part: string }>();
    for (const part of this.partitions) {
      const rows = this.sql.exec<{ message_id: string; day: string; category: string; country: string; occurred_at: number }>(
        `SELECT message_id, day, category, country, occurred_at FROM ${part} WHERE message_id IN (SELECT value FROM json_each(?))`,
        ids,
      );
      for (const r of rows) known.set(r.message_id, { ...r, part });
    }

    const deltas = new Map<string, number>();
    const bump = (day: string, category: string, country: string, by: number) => {
      const k = JSON.stringify([day, category, country]);
      deltas.set(k, (deltas.get(k) ?? 0) + by);
    };
    const writes = new Map<string, BillCandidate[]>();
    const moves = new Map<string, string[]>();
    for (const c of candidates.values()) {
      const old = known.get(c.messageId);
      if (old && old.occurred_at <= c.occurredAt) continue;
      const part = partitionOf(c.day);
      if (old) {
        bump(old.day, old.category, old.country, -1);
        if (old.part !== part) moves.set(old.part, [...(moves.get(old.part) ?? []), c.messageId]);
      }
      bump(c.day, c.category, c.country, 1);
      writes.set(part, [...(writes.get(part) ?? []), c]);
    }
    if (writes.size === 0) return;

    for (const [part, ids] of moves) {
      track(this.sql.exec(`DELETE FROM ${part} WHERE message_id IN (SELECT value FROM json_each(?))`, JSON.stringify(ids)));
    }
    for (const [part, rows] of writes) {
      this.ensurePartition(part, track);
      track(
        this.sql.exec(
          `INSERT INTO ${part} (message_id, day, category, country, occurred_at)
           SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4 FROM json_each(?) AS j WHERE true
           ON CONFLICT (message_id) DO UPDATE SET day = excluded.day, category = excluded.category,
             country = excluded.country, occurred_at = excluded.occurred_at`,
          JSON.stringify(rows.map((w) => [w.messageId, w.day, w.category, w.country, w.occurredAt])),
        ),
      );
    }
    track(
      this.sql.exec(
        `INSERT INTO ledger_daily (day, category, country, n)
         SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3 FROM json_each(?) AS j WHERE true
         ON CONFLICT (day, category, country) DO UPDATE SET n = n + excluded.n`,
        JSON.stringify([...deltas].filter(([, n]) => n !== 0).map(([k, n]) => [...(JSON.parse(k) as string[]), n])),
      ),
    );
  }

  /** Billable messages of each of the client's local `days` (YYYY-MM-DD), by category and country. */
  linesByDay(days: string[]): Record<string, LedgerLine[]> {
    const out: Record<string, LedgerLine[]> = Object.fromEntries(days.map((d) => [d, []]));
    const rows = this.sql.exec<{ day: string; category: string; country: string; n: number }>(
      "SELECT day, category, country, n FROM ledger_daily WHERE day IN (SELECT value FROM json_each(?)) AND n > 0 ORDER BY day, category, country",
      JSON.stringify(days),
    );
    for (const r of rows) out[r.day]!.push({ category: r.category, country: r.country, count: r.n });
    return out;
  }

  private ensurePartition(part: string, track: Track): void {
    if (this.partitions.includes(part)) return;
    track(
      this.sql.exec(
        `CREATE TABLE IF NOT EXISTS ${part} (message_id TEXT PRIMARY KEY, day TEXT NOT NULL, category TEXT NOT NULL,
         country TEXT NOT NULL, occurred_at INTEGER NOT NULL) WITHOUT ROWID`,
      ),
    );
    const now = Date.now();
    for (const p of this.partitions.filter((p) => expired(p, now))) track(this.sql.exec(`DROP TABLE ${p}`));
    this.partitions = [...this.partitions.filter((p) => !expired(p, now)), part].sort();
  }
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
