import { drizzle } from "drizzle-orm/d1";
import type { LedgerLine } from "../../durable-objects/client-counter.ts";
import { dayDueAt, type BillingRunResponse, type UnpricedLine } from "../../schema/billing.ts";
import { ApiError, log } from "../errors.ts";
import { errorMessage } from "../log.ts";
import { clientLedgerLinesByDay, type ShardedClient } from "../client-counters.ts";
import { ensureBillingFiles } from "./files.ts";
import { amountMicros, rateBookFor, type RateBook } from "./rates.ts";
import { commitRevision, currentRevisionLines, dayState, periodStates, lineKey, recordFailedRun, recordRun, storedLines, type DayState, type StoredLine } from "./store.ts";
import { mapBounded } from "../concurrency.ts";
import { clearRebills, markRebills, rebillsBetween, type Rebill } from "./rebills.ts";

/** What billing needs to know about a client. */
export interface BillingClient extends ShardedClient {
  timezone: string;
  currency: string;
}

/**
 * How many of `clients` have a `date` that is not final: not yet due (their local day's end + the
 * grace) at `at`, the start of the day's latest run, so their lines are the day so far or missing
 * altogether (another zone's run billed the day before theirs came due); or `marked` stale
 * (rebills.ts: a late event, a failed run) and not billed again since. Counting from the day's end,
 * and ignoring failed runs, let a day read as final while a client had no lines in it (QA passes,
 * 2026-12-01).
 */
export function openClients(date: string, clients: readonly { id: string; timezone: string }[], at: number, marked: ReadonlySet<string>): number {
  // By zone: clients far outnumber zones, and a summary asks this for each of up to 92 days.
  const dueAt = new Map([...new Set(clients.map((c) => c.timezone))].map((tz) => [tz, dayDueAt(date, tz)]));
  return clients.filter((c) => marked.has(c.id) || dueAt.get(c.timezone)! > at).length;
}

/** Ledger RPCs in flight at once: enough to hide each call's latency without flooding one isolate. */
const LEDGER_FANOUT = 32;

/**
 * Where a run reads its clients' ledgers for a `date` (in the order of `clients`), with what was read
 * before them: the re-bill marks of that date (a mark is written after its ledger change committed,
 * so the ledgers read after it hold the change, and the run may clear it: rebills.ts) and the day's
 * revision, the one the run's commit builds on. A run committed after that read may hold newer
 * ledgers, so this run's commit is then refused (409) rather than publish older counts over it.
 */
interface LedgerSource {
  marks(date: string): Promise<Rebill[]>;
  revision(date: string): Promise<number>;
  read(date: string, clients: BillingClient[]): Promise<LedgerLine[][]>;
  /** A run with these ledgers committed `revision` of `date`: the next run with them builds on it. */
  committed(date: string, revision: number): void;
}

/** Each client's ledger for its local `date`, read from its ClientCounter (the source of truth). */
export function ledgersOf(env: Env, date: string, clients: BillingClient[]): Promise<LedgerLine[][]> {
  return mapBounded(clients, LEDGER_FANOUT, async (c) => (await clientLedgerLinesByDay(env, c, [date]))[date]!);
}

/** The marks and the revision now, then the ledgers. */
function liveLedgers(env: Env): LedgerSource {
  return {
    marks: (date) => rebillsBetween(env.DB, date, date),
    revision: async (date) => (await dayState(env.DB, date)).revision,
    read: (date, clients) => ledgersOf(env, date, clients),
    committed: () => {},
  };
}

/** A tick's ledgers, and the clients whose objects could not be read (to leave out of its runs). */
export interface TickLedgers extends LedgerSource {
  unreadable: BillingClient[];
}

/**
 * Reads every client's ledgers for all its `days` up front, one call per client, and serves them by
 * date: a tick recomputing eight days of 10,000 clients makes 10,000 calls, not 80,000. `marks` are
 * the tick's, read before; the days' revisions are read here, before the ledgers, and follow the
 * tick's own commits (a date's due and stale clients run apart, one after the other). A client whose
 * object does not answer is listed in `unreadable`, so that one broken object does not hold up
 * everyone's billing; reading its ledger throws.
 */
export async function prefetchLedgers(env: Env, days: Map<BillingClient, string[]>, marks: readonly Rebill[]): Promise<TickLedgers> {
  const entries = [...days];
  const dates = [...new Set(entries.flatMap(([, d]) => d))].sort();
  const states = dates.length === 0 ? new Map<string, DayState>() : await periodStates(env.DB, dates[0]!, dates.at(-1)!);
  const revisions = new Map([...states].map(([date, state]) => [date, state.revision]));
  const fetched = await mapBounded(entries, LEDGER_FANOUT, async ([c, d]) => {
    try {
      return await clientLedgerLinesByDay(env, c, d);
    } catch (err) {
      log("error", null, "billing_ledger_unreadable", { client_id: c.id, error: errorMessage(err) });
      return null;
    }
  });
  const byClient = new Map(entries.map(([c], i) => [c.id, fetched[i]!]));
  return {
    marks: async (date) => marks.filter((m) => m.date === date),
    revision: async (date) => revisions.get(date) ?? 0,
    read: async (date, clients) =>
      clients.map((c) => {
        const ledger = byClient.get(c.id);
        if (ledger === null) throw new Error(`the ledger of client ${c.id} could not be read`);
        return ledger?.[date] ?? [];
      }),
    committed: (date, revision) => revisions.set(date, revision),
    unreadable: entries.filter((_, i) => fetched[i] === null).map(([c]) => c),
  };
}

/** The client whose line a run refused as out of range, if that is why it failed. */
export function outOfRangeClient(err: unknown): string | undefined {
  return err instanceof ApiError && err.code === "amount_out_of_range" ? (err.details as { client_id?: string } | undefined)?.client_id : undefined;
}

/** Prices ledger lines; a line without a rate card keeps its count at price 0 and is reported. */
export function priceLines(
  client: BillingClient,
  ledger: LedgerLine[],
  rates: RateBook,
  unpriced: UnpricedLine[],
): StoredLine[] {
  return ledger.map((l) => {
    const price = rates.price(client.id, l.category, l.country);
    if (!price) unpriced.push({ client_id: client.id, category: l.category, country: l.country, billable_count: l.count });
    const unit = price?.unitPriceMicros ?? 0;
    const amount = amountMicros(l.count, unit);
    if (amount === null) {
      // A retry computes the same: the caller's rate card is to change, so this is not a 503.
      throw new ApiError(422, "amount_out_of_range", `${client.id} ${l.category}/${l.country}: ${l.count} × ${unit} micros is beyond what an amount can hold exactly; check that rate card`, {
        client_id: client.id,
        category: l.category,
        country: l.country,
      });
    }
    return {
      clientId: client.id,
      category: l.category,
      country: l.country,
      billableCount: l.count,
      unitPriceMicros: unit,
      amountMicros: amount,
      currency: price?.currency ?? client.currency,
    };
  });
}

function sameLine(a: StoredLine, b: StoredLine): boolean {
  return (
    a.billableCount === b.billableCount &&
    a.unitPriceMicros === b.unitPriceMicros &&
    a.amountMicros === b.amountMicros &&
    a.currency === b.currency
  );
}

/**
 * Computes `date` for `clients` (each client's local day of that date) and stores the result: lines
 * that changed are written as the day's next revision, lines that vanished are deleted, and the
 * day's files are rewritten. A run that changes nothing writes nothing but its billing_runs row.
 */
export async function runBillingDay(
  env: Env,
  date: string,
  clients: BillingClient[],
  trigger: "cron" | "manual",
  now: number,
  ledgers: LedgerSource = liveLedgers(env),
): Promise<BillingRunResponse> {
  const startedAt = now;
  const run = { date, trigger, startedAt, finishedAt: startedAt, clients: clients.length, lines: 0 };
  const ids = new Set(clients.map((c) => c.id));
  try {
    const marks = (await ledgers.marks(date)).filter((m) => ids.has(m.client_id));
    const expected = await ledgers.revision(date);
    const [rates, ledgerLines, before] = await Promise.all([
      rateBookFor(drizzle(env.DB), date),
      ledgers.read(date, clients),
      storedLines(env.DB, date, clients.map((c) => c.id)),
    ]);
    const unpriced: UnpricedLine[] = [];
    const fresh = clients.flatMap((c, i) => priceLines(c, ledgerLines[i]!, rates, unpriced));
    const old = new Map(before.map((l) => [lineKey(l), l]));
    const upserts = fresh.filter((l) => {
      const prev = old.get(lineKey(l));
      old.delete(lineKey(l));
      return !prev || !sameLine(prev, l);
    });
    const deletes = [...old.values()];
    run.lines = fresh.length;
    run.finishedAt = Math.max(Date.now(), startedAt);
    // The first computation of a day is a revision even when empty: finance then gets (empty) files.
    const changed = upserts.length > 0 || deletes.length > 0 || expected === 0;
    let revision = expected;
    if (changed) {
      // The revision this one replaces is archived first: finance may have invoiced it, and once
      // replaced its lines are gone from D1 (its own run may have committed while R2 refused its files).
      if (expected > 0) await ensureBillingFiles(env.LAKE, date, expected, () => currentRevisionLines(env.DB, date));
      if (!(await commitRevision(env.DB, run, expected, upserts, deletes))) {
        throw new ApiError(409, "billing_run_conflict", `another run changed ${date} meanwhile; run it again`);
      }
      revision += 1;
      ledgers.committed(date, revision);
    } else {
      await recordRun(env.DB, run, revision);
    }
    await clearRebills(env.DB, marks);
    const files = await ensureBillingFiles(env.LAKE, date, revision, () => currentRevisionLines(env.DB, date));
    if (unpriced.length > 0) log("warn", null, "billing_unpriced_lines", { date, lines: unpriced.length });
    return { date, revision, changed, clients: clients.length, open_clients: openClients(date, clients, now, new Set()), lines: fresh.length, unpriced, files };
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) throw err;
    run.finishedAt = Math.max(Date.now(), startedAt);
    // With D1 down, recording the failure fails too: the run's own error is the one to report.
    await recordFailedRun(env.DB, run, errorMessage(err)).catch((e: unknown) =>
      log("error", null, "billing_run_not_recorded", e),
    );
    // Its clients' day is stale until a run succeeds: open for finance, and retried by every tick. A
    // tick runs the others again at once without a client whose line is out of range: only it stays.
    const culprit = trigger === "cron" ? outOfRangeClient(err) : undefined;
    await markRebills(env.DB, [date], culprit ? [culprit] : [...ids], Date.now()).catch((e: unknown) => log("error", null, "billing_rebill_not_marked", e));
    // A storage outage is worth retrying: the day's lines commit atomically, so nothing half-changed.
    // A rate card's amount out of range is not (422, recorded above all the same).
    throw err instanceof ApiError ? err : new ApiError(503, "billing_unavailable", `billing of ${date} failed and changed nothing; retry`, undefined, err);
  }
}
