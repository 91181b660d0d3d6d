import { dayDueAt } from "../schema/billing.ts";
import { markRebills } from "../workers/billing/rebills.ts";

/**
 * Due times by zone and day: every billed call asks for its day's, and a zone's offsets take a few
 * Intl calls to work out. Few distinct days are live at once; the map starts over past a bound.
 */
const dueTimes = new Map<string, number>();
const MAX_DUE_TIMES = 4_096;

function dueAt(day: string, timezone: string): number {
  const key = `${timezone}|${day}`;
  let at = dueTimes.get(key);
  if (at === undefined) {
    if (dueTimes.size >= MAX_DUE_TIMES) dueTimes.clear();
    dueTimes.set(key, (at = dayDueAt(day, timezone)));
  }
  return at;
}

/**
 * Marks the client's billing days that a call changed after they were due (workers/billing/rebills.ts),
 * so the next billing tick bills them again: the cron recomputes a client's recent days only in the
 * hour after its newest day comes due, and a late event after that hour would otherwise wait a day
 * in a bill that reads as final. Rare (a day is due two hours after it ends), one batch per call.
 * Not part of the call's commit: if D1 does not answer, the event is stored all the same, and the
 * next day's recompute of the last eight days, or the reconciliation, still finds it.
 */
export async function markLateBilling(db: D1Database, clientId: string, timezone: string, days: Iterable<string>, now: number): Promise<void> {
  const late = [...new Set(days)].filter((day) => dueAt(day, timezone) <= now);
  await Promise.all(late.map((day) => markRebills(db, day, [clientId], now)));
}
