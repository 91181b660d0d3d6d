import { UNKNOWN_CATEGORY, UNKNOWN_COUNTRY } from "../schema/billing.ts";
import type { NotificationEvent } from "../schema/event.ts";
import { localDate } from "../schema/time.ts";
import { eventIdOf, type EventTable } from "./client-counter-tables.ts";
import type { LedgerDelta, PendingAggregates, Track } from "./pending-aggregates.ts";

/** Billable messages of one local day, aggregated for billing. */
export interface LedgerLine {
  category: string;
  country: string;
  count: number;
}

/** What the row a message is billed on carries. */
export interface Bill {
  day: string;
  category: string;
  country: string;
  at: number;
}

/** What a message's status with billable pricing says of it (null: not said). */
export interface MessagePricing {
  category: string | null;
  country: string | null;
}

/** A stored event row: in which event table, the value of its id column, and its status's time. */
interface StoredRow {
  table: EventTable;
  storedId: string;
  at: number;
}

/** A message's billed row as stored. */
interface BilledRow extends Bill, StoredRow {}

/**
 * The status a message is to be billed on: an event of the group (`eventId`), or a delivered/read
 * stored without pricing that the group's pricing bills (`waiting`); and the billed row it displaces.
 */
interface Winner {
  bill: Bill;
  eventId?: string;
  waiting?: StoredRow;
  displaced?: BilledRow;
}

/** The billing decision for one ingest call, taken before its rows are inserted. */
export interface BillingPlan {
  /** Billing columns for the row of `e`, when `e` is the status its message is now billed on. */
  columns(e: NotificationEvent): Bill | null;
  /** After the insert, given the events it accepted: un-bills the rows they displaced; returns the ledger changes. */
  settle(accepted: NotificationEvent[], track: Track): LedgerDelta[];
}

/**
 * One day's lines merged by category and country, the ones that net to nothing left out, in category
 * then country order: a shard's stored and pending lines, or every shard's lines of a client.
 */
export function mergeLedgerLines(lines: Iterable<LedgerLine>): LedgerLine[] {
  const byKey = new Map<string, LedgerLine>();
  for (const line of lines) {
    const key = `${line.category}|${line.country}`;
    const held = byKey.get(key);
    if (held) held.count += line.count;
    else byKey.set(key, { ...line });
  }
  return [...byKey.values()].filter((l) => l.count > 0).sort((a, b) => a.category.localeCompare(b.category) || a.country.localeCompare(b.country));
}

/**
 * The billable-message ledger of one client: a message is billed once, on its earliest delivered/read
 * status with billable pricing (its own, or its message's when it came without: docs/billing.md), in
 * the client's local day. The billed status is marked on that event's
 * own row in the event tables (client-counter-tables.ts), so billing writes no row of its own; when an
 * earlier status arrives late, the mark moves to it. `ledger_daily` holds the per-day aggregates
 * billing reads, plus the changes not yet flushed (pending-aggregates.ts).
 */
export class BillableLedger {
  constructor(
    private readonly sql: SqlStorage,
    private readonly pending: PendingAggregates,
  ) {}

  /**
   * Meta sends `read` without pricing, and no `delivered` for a message read as it arrived: a
   * delivered/read status without pricing takes its message's pricing from a status that had it
   * (stored on that status's row, or elsewhere in this group), so it bills and counts as its
   * message does. A `failed` without pricing takes its message's category and country the same way,
   * to count under the message's category, and is never billed. Returns `events` itself when none
   * took anything, else a copy with those replaced.
   */
  withPricing(events: NotificationEvent[], tables: EventTable[], track: Track): NotificationEvent[] {
    const unpriced = events.filter((e) => takesPricing(e) || takesCategory(e));
    if (unpriced.length === 0) return events;
    const pricing = new Map<string, MessagePricing>();
    const ids = JSON.stringify([...new Set(unpriced.map((e) => e.message_id))]);
    for (const table of tables) {
      const cursor = this.sql.exec<{ message_id: string; category: string; country: string }>(
        `SELECT message_id, category, country FROM ${table.name} WHERE message_id IN (SELECT value FROM json_each(?)) AND category IS NOT NULL`,
        ids,
      );
      for (const r of cursor.toArray()) {
        pricing.set(r.message_id, { category: r.category === UNKNOWN_CATEGORY ? null : r.category, country: r.country === UNKNOWN_COUNTRY ? null : r.country });
      }
      track(cursor);
    }
    for (const e of events) if (e.billable === true && !pricing.has(e.message_id)) pricing.set(e.message_id, { category: e.category, country: e.country });
    let took = false;
    const out = events.map((e) => {
      const bills = takesPricing(e);
      const p = bills || takesCategory(e) ? pricing.get(e.message_id) : undefined;
      if (!p) return e;
      took = true;
      const placed = { ...e, category: e.category ?? (p.category as NotificationEvent["category"]), country: e.country ?? p.country };
      return bills ? { ...placed, billable: true } : placed;
    });
    return took ? out : events;
  }

  /**
   * Decides which status each message of `events` is billed on, given what `tables` already hold:
   * the earliest of its billable delivered/read statuses in `events`, its billed row, and a
   * delivered/read stored without pricing that a status with billable pricing in `events` now prices.
   */
  plan(events: NotificationEvent[], timezone: string, tables: EventTable[], track: Track): BillingPlan {
    const candidates = billCandidates(events, timezone);
    const pricing = pricingOf(events);
    const winners = new Map<string, Winner>();
    let waitingWins = false;
    // Every candidate's message is priced in `events` too, so the priced messages are the ones to ask about.
    if (pricing.size > 0) {
      const stored = this.storedBills([...pricing.keys()], tables, track);
      for (const [messageId, p] of pricing) {
        const { billed: old, waiting, waitingIds } = stored.get(messageId) ?? {};
        let best: Winner | undefined = candidates.get(messageId);
        // A copy of a status stored without pricing (a mirror topic's, then Meta's priced one) is not
        // stored again, so it cannot carry the bill, whatever time it says: the stored rows do.
        if (best && waitingIds?.has(best.eventId!)) best = undefined;
        // A tie goes to the stored row: the candidate may be that very status sent again (Meta and
        // the bridge deliver at least once), a duplicate that is not stored, so nothing would bill.
        if (waiting && (!best || waiting.at <= best.bill.at)) {
          best = { bill: { day: localDate(waiting.at, timezone), category: p.category ?? UNKNOWN_CATEGORY, country: p.country ?? UNKNOWN_COUNTRY, at: waiting.at }, waiting };
        }
        if (!best || (old && old.at <= best.bill.at)) continue;
        winners.set(messageId, { ...best, displaced: old });
        if (best.waiting) waitingWins = true;
      }
    }
    return {
      columns: (e) => {
        const w = winners.get(e.message_id);
        return w && w.eventId === e.event_id ? w.bill : null;
      },
      settle: (accepted, trackSettle) => {
        const deltas: LedgerDelta[] = [];
        const bill = (messageId: string, w: Winner) => {
          deltas.push([w.bill.day, w.bill.category, w.bill.country, 1]);
          const old = w.displaced;
          if (!old) return;
          trackSettle(
            this.sql.exec(
              `UPDATE ${old.table.name} SET billed_day = NULL, billed_at = NULL WHERE message_id = ? AND ${old.table.idColumn} = ?`,
              messageId,
              old.storedId,
            ),
          );
          deltas.push([old.day, old.category, old.country, -1]);
        };
        for (const e of accepted) {
          const w = winners.get(e.message_id);
          if (w?.eventId === e.event_id) bill(e.message_id, w);
        }
        if (!waitingWins) return deltas;
        // Even when the status that priced it is a duplicate: its first copy came without pricing,
        // and the pricing, dropped with the copy, would be known nowhere else.
        for (const [messageId, w] of winners) {
          if (!w.waiting) continue;
          trackSettle(
            this.sql.exec(
              `UPDATE ${w.waiting.table.name} SET billed_day = ?, category = ?, country = ? WHERE message_id = ? AND ${w.waiting.table.idColumn} = ?`,
              w.bill.day,
              w.bill.category,
              w.bill.country,
              messageId,
              w.waiting.storedId,
            ),
          );
          bill(messageId, w);
        }
        return deltas;
      },
    };
  }

  /** Billable messages of each of the client's local `days` (YYYY-MM-DD), by category and country. */
  linesByDay(days: string[]): Record<string, LedgerLine[]> {
    const parts: Record<string, LedgerLine[]> = Object.fromEntries(days.map((d) => [d, []]));
    const add = (r: { day: string; category: string; country: string; n: number }) => parts[r.day]!.push({ category: r.category, country: r.country, count: r.n });
    for (const r of this.sql.exec<{ day: string; category: string; country: string; n: number }>(
      "SELECT day, category, country, n FROM ledger_daily WHERE day IN (SELECT value FROM json_each(?))",
      JSON.stringify(days),
    )) {
      add(r);
    }
    for (const r of this.pending.ledgerOf(new Set(days))) add(r);
    return Object.fromEntries(days.map((d) => [d, mergeLedgerLines(parts[d]!)]));
  }

  /**
   * For each of `messageIds`, wherever they are: its billed row, and its earliest delivered/read
   * stored without pricing (`billed_at` set, no `billed_day`: waiting for its message's pricing).
   */
  private storedBills(messageIds: string[], tables: EventTable[], track: Track): Map<string, { billed?: BilledRow; waiting?: StoredRow; waitingIds?: Set<string> }> {
    const out = new Map<string, { billed?: BilledRow; waiting?: StoredRow; waitingIds?: Set<string> }>();
    const ids = JSON.stringify(messageIds);
    for (const table of tables) {
      const cursor = this.sql.exec<{ message_id: string; stored_id: string; billed_day: string | null; category: string; country: string; billed_at: number }>(
        `SELECT message_id, ${table.idColumn} AS stored_id, billed_day, category, country, billed_at FROM ${table.name}
         WHERE message_id IN (SELECT value FROM json_each(?)) AND billed_at IS NOT NULL`,
        ids,
      );
      for (const r of cursor.toArray()) {
        let found = out.get(r.message_id);
        if (!found) out.set(r.message_id, (found = {}));
        if (r.billed_day !== null) {
          found.billed = { table, storedId: r.stored_id, day: r.billed_day, category: r.category, country: r.country, at: r.billed_at };
        } else {
          (found.waitingIds ??= new Set()).add(eventIdOf(r.message_id, r.stored_id));
          if (!found.waiting || r.billed_at < found.waiting.at) found.waiting = { table, storedId: r.stored_id, at: r.billed_at };
        }
      }
      track(cursor);
    }
    return out;
  }
}

/** A delivered/read status that came without pricing, which its message's pricing can fill in. */
function takesPricing(e: NotificationEvent): boolean {
  return (e.status === "delivered" || e.status === "read") && e.billable === null;
}

/** A failed status that came without pricing: Meta rarely prices one; it is counted in its message's category. */
function takesCategory(e: NotificationEvent): boolean {
  return e.status === "failed" && e.billable === null && e.category === null;
}

/**
 * The pricing columns of the row of `e`: its bill when it is the status its message is billed on;
 * else, for a status with billable pricing, that pricing (with no billing day), which a later status
 * of the message without pricing takes (`withPricing`); else, for a delivered/read without pricing,
 * its time alone (`plan` bills it when its message's pricing comes later); else none.
 */
export function pricingColumns(e: NotificationEvent, bill: Bill | null): [day: string | null, category: string | null, country: string | null, at: number | null] {
  if (bill) return [bill.day, bill.category, bill.country, bill.at];
  if (e.billable === true) return [null, e.category ?? UNKNOWN_CATEGORY, e.country ?? UNKNOWN_COUNTRY, null];
  // Still without pricing: its time, so that a priced status of its message arriving later bills it.
  if (takesPricing(e)) return [null, null, null, e.occurred_at];
  return [null, null, null, null];
}

/** The pricing of each message that has a status with billable pricing in `events` (its first). */
function pricingOf(events: NotificationEvent[]): Map<string, MessagePricing> {
  const out = new Map<string, MessagePricing>();
  for (const e of events) if (e.billable === true && !out.has(e.message_id)) out.set(e.message_id, { category: e.category, country: e.country });
  return out;
}

/** Billable delivered/read events, earliest per message, with the client's local billing day. */
function billCandidates(events: NotificationEvent[], timezone: string): Map<string, { bill: Bill; eventId: string }> {
  const out = new Map<string, { bill: Bill; eventId: string }>();
  for (const e of events) {
    if ((e.status !== "delivered" && e.status !== "read") || e.billable !== true) continue;
    const prev = out.get(e.message_id);
    if (prev && prev.bill.at <= e.occurred_at) continue;
    out.set(e.message_id, {
      eventId: e.event_id,
      bill: { day: localDate(e.occurred_at, timezone), category: e.category ?? UNKNOWN_CATEGORY, country: e.country ?? UNKNOWN_COUNTRY, at: e.occurred_at },
    });
  }
  return out;
}
