import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { dayDueRange, totalsByCurrency, type BillingSummary } from "../../schema/billing.ts";
import { clients } from "../../schema/db.ts";
import { ApiError } from "../errors.ts";
import { clientNotFound } from "../client-records.ts";
import { rebillsBetween } from "./rebills.ts";
import { openClients } from "./run.ts";
import { periodStatesOf, periodStatesQuery, periodSumsQuery, type DayState, type PeriodStateRow, type PeriodSum } from "./store.ts";
import { addDays } from "../../schema/time.ts";

/** A day of a period: its state (undefined: never run), its open clients, when it is due. */
export interface DayFinality {
  date: string;
  state?: DayState;
  open: number;
  due: { from: number; to: number } | null;
}

/**
 * Each day of a period with its state and how many of the clients asked about (one, or all) are open
 * at it (run.ts, `openClients`), and the rows of `rows`, read in the same D1 batch (one transaction)
 * as the states: the lines or sums a run committing meanwhile changes are those of the revision named.
 * A client id nobody has is a 404: a typo must not read as "no charges".
 */
export async function daysFinality<T>(d1: D1Database, from: string, to: string, clientId: string | undefined, rows: D1PreparedStatement): Promise<{ days: DayFinality[]; rows: T[] }> {
  const zones = drizzle(d1).select({ id: clients.id, timezone: clients.timezone }).from(clients);
  const [asked, [stateRows, read], marks] = await Promise.all([
    clientId === undefined ? zones : zones.where(eq(clients.id, clientId)),
    d1.batch<unknown>([periodStatesQuery(d1, from, to), rows]),
    rebillsBetween(d1, from, to),
  ]);
  if (clientId !== undefined && asked.length === 0) throw clientNotFound(clientId);
  const states = periodStatesOf(stateRows!.results as PeriodStateRow[]);
  const days: DayFinality[] = [];
  const now = Date.now();
  // Once, not per day of up to 92: a failed run marks all of a date's 10,000 clients.
  const markedOn = Map.groupBy(marks, (m) => m.date);
  const askedZones = new Set(asked.map((c) => c.timezone));
  for (let date = from; date <= to; date = addDays(date, 1)) {
    const state = states.get(date);
    const marked = new Set((markedOn.get(date) ?? []).map((m) => m.client_id));
    // As of the day's latest run: one that changed nothing still confirmed the lines.
    days.push({ date, state, open: openClients(date, asked, state?.checkedAt ?? now, marked), due: dayDueRange(date, askedZones) });
  }
  return { days, rows: read!.results as T[] };
}

/**
 * A period's billing (a month, to invoice it): per client and currency, per currency, and each day's
 * revision and open clients, so finance sees whether every day of it is final. Reads D1 only.
 */
export async function billingSummary(d1: D1Database, from: string, to: string, clientId?: string): Promise<BillingSummary> {
  const { days, rows: sums } = await daysFinality<PeriodSum>(d1, from, to, clientId, periodSumsQuery(d1, from, to, clientId));
  const totals = totalsByCurrency(sums);
  // Each line is below 2^53 micros (the run refuses more); a period's sum could pass it and lose its last digits.
  if (totals.some((t) => !Number.isSafeInteger(t.amount_micros))) {
    throw new ApiError(422, "amount_out_of_range", `the period's amounts pass 2^53 micros; ask for a shorter period`);
  }
  return {
    from,
    to,
    clients: sums,
    totals,
    days: days.map(({ date, state, open }) => ({ date, revision: state?.revision ?? 0, checked_at: state?.checkedAt ?? null, open_clients: open })),
  };
}
