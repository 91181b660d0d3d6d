import type { CategoryCounts, MinuteCounts, StatusCounts } from "../schema/api.ts";
import { STATUSES, type Category, type NotificationEvent, type Status } from "../schema/event.ts";
import { HOUR_MINUTES } from "../schema/live.ts";
import { MINUTE_MS, localDate, localDayRange, minuteOf } from "../schema/time.ts";
import { emptyCounts } from "./client-shards.ts";
import type { PendingAggregates } from "./pending-aggregates.ts";

/**
 * The read side of a ClientCounter's counters: the SQLite counters (`minute_totals`) plus the
 * pending ones, which are one sum until a flush moves the second into the first. The last hour's
 * minutes and today's totals are summed once and then kept up to date by `absorb`, because the live
 * layer asks for them several times a second per client (updates, rollups): a query each time was
 * ~7 % of a webhook's CPU, and re-summing the day's minute rows would read thousands of rows per call.
 */
export class CounterReads {
  /** Per-minute counts from `from` on (see `recentSince`). */
  private recent: { from: number; minutes: Map<number, MinuteCounts> } | null = null;
  /** Today's totals in one time zone (see `today`). */
  private todayTotals: { timezone: string; day: string; start: number; end: number; counts: StatusCounts } | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly pending: PendingAggregates,
  ) {}

  /** Adds events an ingest just committed to the sums kept in memory. */
  absorb(accepted: NotificationEvent[]): void {
    const today = this.todayTotals;
    if (today) for (const e of accepted) if (e.occurred_at >= today.start && e.occurred_at < today.end) today.counts[e.status] += 1;
    if (!this.recent) return;
    for (const e of accepted) {
      const minute = minuteOf(e.occurred_at);
      if (minute < this.recent.from) continue;
      let m = this.recent.minutes.get(minute);
      if (!m) this.recent.minutes.set(minute, (m = { minute, ...emptyCounts() }));
      m[e.status] += 1;
    }
  }

  /** Per-minute counts by status in [from, to), one entry per minute that has events. */
  counters(from: number, to: number): MinuteCounts[] {
    const recent = this.recentSince(from);
    if (recent) {
      return [...recent.values()]
        .filter((m) => m.minute >= from && m.minute < to)
        .sort((a, b) => a.minute - b.minute)
        .map((m) => ({ ...m }));
    }
    return this.summedCounters(from, to);
  }

  /** Counts by pricing category and status over the minutes in [from, to), a category per entry, in no order. */
  categoryTotals(from: number, to: number): CategoryCounts[] {
    const byCategory = new Map<string, CategoryCounts>();
    for (const r of this.countsBy("category", from, to)) {
      const category = r.key as string;
      let c = byCategory.get(category);
      if (!c) byCategory.set(category, (c = { category: category === "" ? null : (category as Category), ...emptyCounts() }));
      c[r.status] += r.n;
    }
    return [...byCategory.values()];
  }

  /** Totals by status of the local day in `timezone`, summed once per local day (or wake). */
  today(timezone: string): StatusCounts {
    const day = localDate(Date.now(), timezone);
    if (this.todayTotals?.timezone !== timezone || this.todayTotals.day !== day) {
      const [start, end] = localDayRange(day, timezone);
      this.todayTotals = { timezone, day, start, end, counts: this.totals(start, end) };
    }
    return { ...this.todayTotals.counts };
  }

  /** Totals by status in [from, to), SQLite's plus the pending ones. */
  totals(from: number, to: number): StatusCounts {
    const out = emptyCounts();
    for (const m of this.summedCounters(from, to)) for (const s of STATUSES) out[s] += m[s];
    return out;
  }

  /** Per-minute counts in [from, to) summed from SQLite and the pending counts, bypassing the sums in memory. */
  summedCounters(from: number, to: number): MinuteCounts[] {
    const byMinute = new Map<number, MinuteCounts>();
    for (const r of this.countsBy("minute", from, to)) {
      const minute = r.key as number;
      let m = byMinute.get(minute);
      if (!m) byMinute.set(minute, (m = { minute, ...emptyCounts() }));
      m[r.status] += r.n;
    }
    return [...byMinute.values()].sort((a, b) => a.minute - b.minute);
  }

  /** The minutes of the last hour in memory, when `from` lies in it. */
  private recentSince(from: number): Map<number, MinuteCounts> | null {
    const first = minuteOf(Date.now()) - HOUR_MINUTES * MINUTE_MS;
    if (from < first) return null;
    if (!this.recent || this.recent.from < first - HOUR_MINUTES * MINUTE_MS) {
      this.recent = { from: first, minutes: new Map(this.summedCounters(first, Number.MAX_SAFE_INTEGER).map((m) => [m.minute, m])) };
    }
    return from >= this.recent.from ? this.recent.minutes : null;
  }

  /**
   * Counts in [from, to) by status and by `by` (the minute, or the category with "" for none): the
   * SQLite counters' and the pending ones, a key and status possibly in both.
   */
  private *countsBy(by: "minute" | "category", from: number, to: number): Generator<{ key: number | string; status: Status; n: number }> {
    yield* this.sql.exec<{ key: number | string; status: Status; n: number }>(
      `SELECT ${by === "minute" ? "m.minute" : "c.key"} AS key, s.key AS status, SUM(c.value) AS n
       FROM minute_totals AS m, json_each(m.counts) AS s, json_each(s.value) AS c
       WHERE m.minute >= ? AND m.minute < ? GROUP BY 1, 2`,
      from,
      to,
    );
    for (const p of this.pending.countsIn(from, to)) yield { key: p[by], status: p.status, n: p.n };
  }
}
