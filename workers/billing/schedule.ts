import { addDays, localDate, localDayRange } from "../../schema/time.ts";
import { ApiError, log } from "../errors.ts";
import { errorMessage } from "../log.ts";
import { GRACE_MS, RECOMPUTE_DAYS, dayDueAt } from "../../schema/billing.ts";
import { allRebills, markRebills, type Rebill } from "./rebills.ts";
import { outOfRangeClient, prefetchLedgers, runBillingDay, type BillingClient } from "./run.ts";
import { periodStates } from "./store.ts";

/**
 * A client's days are (re)computed by every tick within this long after its newest day became due,
 * so a few failed or skipped 10-minute ticks still bill it; repeats are idempotent.
 */
const CATCH_UP_MS = 3_600_000;

/** When the latest successful run of each date began (the dates asked about that have one). */
export type LastRuns = ReadonlyMap<string, number>;

/** The newest local day of `timezone` that closed at least GRACE_MS before `now`, and when it became due. */
function newestDueDay(timezone: string, now: number): { date: string; dueAt: number } {
  const date = addDays(localDate(now - GRACE_MS, timezone), -1);
  return { date, dueAt: dayDueAt(date, timezone) };
}

/**
 * The days a client moved from zone `from` to zone `to` at `now` has due that it had not in `from`:
 * `to`'s newest due day and those between it and `from`'s. A zone further east makes them due at
 * once, and a tick takes a client's newest day past its first hour only while no run of that day has
 * begun since it became due, which another zone's clients' run may have: marked (rebills.ts), they
 * are billed by the next tick and read as open until then.
 */
export function daysDueSooner(from: string, to: string, now: number): string[] {
  const was = newestDueDay(from, now).date;
  const days: string[] = [];
  for (let date = newestDueDay(to, now).date; date > was; date = addDays(date, -1)) days.push(date);
  return days;
}

/**
 * Days to compute for a client at `now`: none, or its newest due day and the RECOMPUTE_DAYS − 1
 * before. Past the catch-up hour only if no run of that day has begun since it became due: the first
 * tick after the day became due takes every client then due, so a run that began later took this
 * client too, and none means the whole hour passed without a tick (an outage, a stack started that
 * morning), which would otherwise leave the day to the next day's recompute.
 */
export function dueDaysOf(timezone: string, now: number, lastRuns: LastRuns): string[] {
  const { date, dueAt } = newestDueDay(timezone, now);
  if (now - dueAt >= CATCH_UP_MS && (lastRuns.get(date) ?? -Infinity) >= dueAt) return [];
  return Array.from({ length: RECOMPUTE_DAYS }, (_, i) => addDays(date, -i));
}

/** The days due at `now` per client, for the clients that have any. */
function dueDaysByClient(clients: BillingClient[], now: number, lastRuns: LastRuns): Map<BillingClient, string[]> {
  return new Map(clients.map((c) => [c, dueDaysOf(c.timezone, now, lastRuns)] as const).filter(([, days]) => days.length > 0));
}

/** Groups the clients due at `now` by billing date. */
export function planTick(clients: BillingClient[], now: number, lastRuns: LastRuns): Map<string, BillingClient[]> {
  return byDate(dueDaysByClient(clients, now, lastRuns));
}

/** When the latest successful run of each of the clients' newest due days at `now` began (a day or two apart across zones). */
async function lastRunsOfNewestDays(d1: D1Database, clients: BillingClient[], now: number): Promise<LastRuns> {
  const dates = clients.map((c) => newestDueDay(c.timezone, now).date).sort();
  if (dates.length === 0) return new Map();
  const states = await periodStates(d1, dates[0]!, dates.at(-1)!);
  return new Map([...states].flatMap(([date, { checkedAt }]) => (checkedAt === null ? [] : [[date, checkedAt] as const])));
}

/** Clients' days grouped by date, dates in order. */
function byDate(work: Map<BillingClient, string[]>): Map<string, BillingClient[]> {
  const plan = new Map<string, BillingClient[]>();
  for (const [c, days] of work) {
    for (const date of days) {
      let list = plan.get(date);
      if (!list) plan.set(date, (list = []));
      list.push(c);
    }
  }
  return new Map([...plan].sort(([a], [b]) => a.localeCompare(b)));
}

/** Every client, active or not, with what billing needs. */
export async function billingClients(d1: D1Database): Promise<BillingClient[]> {
  const { results } = await d1.prepare("SELECT id, timezone, currency, shards FROM clients ORDER BY id").all<BillingClient>();
  return results;
}

/**
 * The marked days of each client that its due days do not already cover and that are due at the
 * tick's `now` (the objects mark by their own clock, which is the tick's in production; a tick played
 * back at an earlier time leaves the marks of days not yet due to later ticks), and each such date's
 * earliest mark.
 */
function staleDays(due: Map<BillingClient, string[]>, clients: BillingClient[], rebills: Rebill[], now: number): { stale: Map<BillingClient, string[]>; markedAt: Map<string, number> } {
  const stale = new Map<BillingClient, string[]>();
  const markedAt = new Map<string, number>();
  const byId = new Map(clients.map((c) => [c.id, c]));
  for (const { date, client_id, marked_at } of rebills) {
    const client = byId.get(client_id);
    if (!client || dayDueAt(date, client.timezone) > now || due.get(client)?.includes(date)) continue;
    const days = stale.get(client) ?? [];
    if (!days.includes(date)) days.push(date);
    stale.set(client, days);
    markedAt.set(date, Math.min(markedAt.get(date) ?? Infinity, marked_at));
  }
  return { stale, markedAt };
}

/**
 * Marked dates one tick bills at most, after the dates due now. A run costs ~6 D1 queries and an
 * invocation has 1,000, so a backfill that marked a year of a client's days neither fails the tick
 * nor holds back the days due now; the rest stay marked, and open, for the next ticks, 480 an hour.
 */
export const STALE_DATES_PER_TICK = 80;

/**
 * `stale` cut to the STALE_DATES_PER_TICK dates marked first (newest date first among marks of the
 * same moment, as a backfill's are), and how many dates wait for later ticks. First marked, first
 * billed: a run that fails marks its day again, later, so dates that keep failing (an object that
 * does not answer, a card out of range) go behind the others instead of taking every tick's share.
 */
function firstMarkedStale({ stale, markedAt }: ReturnType<typeof staleDays>): { taken: Map<BillingClient, string[]>; deferred: number } {
  const dates = [...markedAt.keys()].sort((a, b) => markedAt.get(a)! - markedAt.get(b)! || b.localeCompare(a));
  const taken = new Set(dates.slice(0, STALE_DATES_PER_TICK));
  const kept = [...stale].map(([c, days]) => [c, days.filter((d) => taken.has(d))] as const).filter(([, days]) => days.length > 0);
  return { taken: new Map(kept), deferred: dates.length - taken.size };
}

interface TickResult {
  date: string;
  revision?: number;
  error?: string;
}

/**
 * The billing pass of one tick. Inactive clients are included: their last events still bill. One
 * date failing does not stop the others; the next tick retries it.
 */
async function billingTick(env: Env, now: number): Promise<TickResult[]> {
  const [clients, rebills] = await Promise.all([billingClients(env.DB), allRebills(env.DB)]);
  const due = dueDaysByClient(clients, now, await lastRunsOfNewestDays(env.DB, clients, now));
  const { taken: stale, deferred } = firstMarkedStale(staleDays(due, clients, rebills, now));
  // The stale clients of a date run apart from its due ones: a client that keeps failing (a card
  // out of range) must not hold another zone's bill of the same date. Due dates run first.
  const runs = [...byDate(due), ...byDate(stale)];
  const results: TickResult[] = [];
  if (runs.length === 0) return results;
  const work = new Map<BillingClient, string[]>([...due].map(([c, days]) => [c, [...days, ...(stale.get(c) ?? [])]]));
  for (const [c, days] of stale) if (!due.has(c)) work.set(c, days);
  let ledgers;
  try {
    ledgers = await prefetchLedgers(env, work, rebills);
  } catch (err) {
    // D1 not saying the days' revisions fails the tick's dates; the next tick reads them all again.
    log("error", null, "billing_tick_failed", err);
    return runs.map(([date]) => ({ date, error: errorMessage(err) }));
  }
  // A client whose object did not answer is marked for its days (open, and retried by every tick
  // until it answers) and left out of the runs, which bill the others meanwhile.
  const unreadable = new Set(ledgers.unreadable.map((c) => c.id));
  for (const [date, group] of byDate(new Map(ledgers.unreadable.map((c) => [c, work.get(c)!])))) {
    await markRebills(env.DB, [date], group.map((c) => c.id), now).catch((err: unknown) => log("error", null, "billing_rebill_not_marked", err));
  }
  for (const [date, group] of runs) {
    const readable = group.filter((c) => !unreadable.has(c.id));
    if (readable.length < group.length) results.push({ date, error: `the ledgers of ${group.length - readable.length} clients could not be read` });
    // A client whose card puts a line out of range fails the run for all; the others run again
    // without it (it stays marked, open and retried until its card is fixed).
    for (let clients = readable; clients.length > 0; ) {
      try {
        const r = await runBillingDay(env, date, clients, "cron", now, ledgers);
        results.push({ date, revision: r.revision });
        break;
      } catch (err) {
        log("error", null, "billing_tick_failed", err);
        results.push({ date, error: errorMessage(err) });
        const culprit = outOfRangeClient(err);
        const rest = clients.filter((c) => c.id !== culprit);
        if (rest.length === clients.length) break;
        clients = rest;
      }
    }
  }
  log("info", null, "billing_tick", { at: now, dates: results, ...(deferred > 0 && { marked_dates_deferred: deferred }) });
  return results;
}

/** The "*\/10 * * * *" cron job: a tick, failing (after every date ran) when any date failed. */
export async function billingJob(env: Env, scheduledTime: number): Promise<void> {
  const failed = (await billingTick(env, scheduledTime)).filter((r) => r.error !== undefined);
  if (failed.length > 0) throw new Error(`billing failed for ${failed.map((r) => r.date).join(", ")}`);
}

/**
 * `POST /v1/billing/:date/run`: recomputes `date` now for every client whose local day has begun.
 * The admin asks explicitly, so there is no grace period, and a day still running is billed as it
 * stands (`open_clients` in the response); the cron bills it again once it has closed, as a new
 * revision if anything changed. Refuses a day that has not begun anywhere.
 */
export async function runBillingOnDemand(env: Env, date: string, now: number) {
  const begun = (await billingClients(env.DB)).filter((c) => localDayRange(date, c.timezone)[0] <= now);
  if (begun.length === 0) throw new ApiError(409, "day_not_started", `${date} has not begun for any client yet`);
  return runBillingDay(env, date, begun, "manual", now);
}
