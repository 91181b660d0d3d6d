import { dayDueAt } from "../schema/billing.ts";
import { markRebills } from "../workers/billing/rebills.ts";
import type { LedgerDelta } from "./pending-aggregates.ts";

/**
 * The billing days a call's ledger changes touched that were already due at `now`: billing has
 * passed them, so they are to be billed again. Usually none (a day is due two hours after it ends),
 * and then the call does nothing more.
 */
export function lateDays(changes: readonly LedgerDelta[], timezone: string, now: number): string[] {
  const late = new Set<string>();
  for (const [day] of changes) if (dayDueAt(day, timezone) <= now) late.add(day);
  return [...late];
}

/**
 * Marks `days` of the client for the next billing tick (workers/billing/rebills.ts): the cron
 * recomputes a client's recent days only in the hour after its newest day comes due, and a late
 * event after that hour would otherwise wait a day in a bill that reads as final. Not part of the
 * call's commit: if D1 does not answer, the event is stored all the same, and the next day's
 * recompute of the last eight days, or the reconciliation, still finds it.
 */
export async function markLateBilling(db: D1Database, clientId: string, days: readonly string[], now: number): Promise<void> {
  await markRebills(db, days, [clientId], now);
}
