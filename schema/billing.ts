import { z } from "zod";
import { Currency, IsoDate, QueryWholeNumber } from "./api.ts";
import { ClientId } from "./event.ts";
import { localDayRange } from "./time.ts";

/** Late events (Meta retries for days; bridges lag) still land in a day billed this long after it closed. */
export const GRACE_MS = 2 * 3_600_000;

/**
 * Each time a client's newest day is billed, this many closed days (newest included) are recomputed:
 * Meta retries an unacknowledged webhook for up to 7 days, and a dead letter is replayed days later,
 * so a status can land a week after its day and must still be billed without anyone asking. The
 * ledger RPC per client stays one (it serves all the days); an unchanged day writes nothing but its
 * `billing_runs` row.
 */
export const RECOMPUTE_DAYS = 8;

/** When a client's local `date` is due for billing: its end in `timezone`, plus the grace. */
export function dayDueAt(date: string, timezone: string): number {
  return localDayRange(date, timezone)[1] + GRACE_MS;
}

/** When `date` is due for clients in `timezones`: the first and the last of them; null for none. */
export function dayDueRange(date: string, timezones: Iterable<string>): { from: number; to: number } | null {
  const due = [...new Set(timezones)].map((tz) => dayDueAt(date, tz));
  return due.length === 0 ? null : { from: Math.min(...due), to: Math.max(...due) };
}

/**
 * A billing line's category and country when Meta did not say (`ZZ`: CLDR's unknown region); rate
 * cards match them through `*`.
 */
export const UNKNOWN_CATEGORY = "unknown";
export const UNKNOWN_COUNTRY = "ZZ";

/** One billed line: a client's billable messages of one local day, by category × country. */
export const BillingLine = z.object({
  client_id: ClientId,
  client_name: z.string(),
  category: z.string(),
  country: z.string(),
  billable_count: z.number().int().min(0),
  unit_price_micros: z.number().int().min(0),
  amount_micros: z.number().int().min(0),
  currency: Currency,
});
export type BillingLine = z.infer<typeof BillingLine>;

/** A count and amount in one currency. */
export const CurrencyTotal = z.object({ currency: Currency, billable_count: z.number().int(), amount_micros: z.number().int() });
export type CurrencyTotal = z.infer<typeof CurrencyTotal>;

/** Totals per currency, in currency order (amounts in different currencies do not add up). */
export function totalsByCurrency(items: readonly CurrencyTotal[]): CurrencyTotal[] {
  const totals = new Map<string, CurrencyTotal>();
  for (const item of items) {
    const total = totals.get(item.currency) ?? { currency: item.currency, billable_count: 0, amount_micros: 0 };
    total.billable_count += item.billable_count;
    total.amount_micros += item.amount_micros;
    totals.set(item.currency, total);
  }
  return [...totals.values()].sort((a, b) => a.currency.localeCompare(b.currency));
}

/** Lines counted but without an applicable rate card: billed at 0 and listed so finance can price them. */
export const UnpricedLine = z.object({ client_id: ClientId, category: z.string(), country: z.string(), billable_count: z.number().int() });
export type UnpricedLine = z.infer<typeof UnpricedLine>;

/**
 * A day billing can have: events are kept from 2000-01-01 to 2100-01-01 UTC (EpochMs), which are
 * local days from 1999-12-31 (west of UTC) to 2100-01-01 (east of it); days outside have nothing.
 */
export const BillingDate = IsoDate.refine((d) => d >= "1999-12-31" && d <= "2100-01-01", "a day from 1999-12-31 to 2100-01-01");
/** The `{date}` of `/v1/billing/{date}/…`. */
export const BillingDateParam = z.object({ date: BillingDate });

export const BillingQuery = z.object({ date: BillingDate, client_id: ClientId.optional() });

/** Longest period one summary covers: a quarter (longer is 400 `range_too_large`, as for reports and counters). */
export const MAX_SUMMARY_DAYS = 92;

/** `GET /v1/billing/summary`: a period of billing days, both ends included (a month: the 1st to its last day). */
export const BillingSummaryQuery = z
  .object({ from: BillingDate, to: BillingDate, client_id: ClientId.optional() })
  .refine((q) => q.from <= q.to, { message: "`from` must not be after `to`", path: ["to"] });

/** What a period's days add up to: per client and currency, per currency, and how final each day is. */
export const BillingSummary = z.object({
  from: IsoDate,
  to: IsoDate,
  clients: z.array(CurrencyTotal.extend({ client_id: ClientId, client_name: z.string() })),
  totals: z.array(CurrencyTotal),
  /**
   * Every day of the period: its current revision (0: no lines yet), when its latest run began (null:
   * never run) and how many of the clients asked about were not yet due then (as `open_clients` of
   * GET /v1/billing). A period is final for invoicing once every day has run with no open clients.
   */
  days: z.array(z.object({ date: IsoDate, revision: z.number().int(), checked_at: z.number().int().nullable(), open_clients: z.number().int() })),
});
export type BillingSummary = z.infer<typeof BillingSummary>;

/**
 * A day's billing. `revision` is the day's: 0 = never computed, then +1 each time a computation
 * changed any line. `computed_at` (epoch ms) is when the current revision was produced.
 */
export const BillingResponse = z.object({
  date: IsoDate,
  revision: z.number().int().min(0),
  computed_at: z.number().int().nullable(),
  /**
   * Clients (of those asked about) whose day is not final: not yet due when the day's latest run
   * began (now, when never computed; due is the end of their local day plus the 2 h grace), or marked
   * stale since (a late event, a failed run) and not billed again yet. Their lines are the day so far,
   * or absent, provisional until a run bills them.
   */
  open_clients: z.number().int().min(0),
  /**
   * When the cron bills the day: from the first of the clients asked about to the last, each at the
   * end of its local day plus the grace (epoch ms); null when no client is asked about.
   */
  due: z.object({ from: z.number().int(), to: z.number().int() }).nullable(),
  lines: z.array(BillingLine),
  unpriced: z.array(UnpricedLine),
});
export type BillingResponse = z.infer<typeof BillingResponse>;

export const BillingRunResponse = z.object({
  date: IsoDate,
  revision: z.number().int().min(0),
  changed: z.boolean(),
  clients: z.number().int(),
  /** Of `clients`, those not yet due (local day's end + 2 h grace): their lines are provisional. */
  open_clients: z.number().int(),
  lines: z.number().int(),
  unpriced: z.array(UnpricedLine),
  files: z.array(z.string()),
});
export type BillingRunResponse = z.infer<typeof BillingRunResponse>;

const BILLING_FORMATS = ["csv", "parquet"] as const;
export const BillingFormat = z.enum(BILLING_FORMATS);
export type BillingFormat = z.infer<typeof BillingFormat>;
export const DownloadQuery = z.object({
  format: BillingFormat.default("csv"),
  /** An earlier revision's file (each is kept as it was); the day's current revision by default. */
  revision: QueryWholeNumber.min(1).optional(),
});
export const DownloadResponse = z.object({
  url: z.string(),
  expires_at: z.number().int().describe("when the link stops working, epoch ms (its exp parameter is in seconds)"),
  /** The revision the link serves, whatever the day is re-billed to meanwhile. */
  revision: z.number().int(),
});
export type DownloadResponse = z.infer<typeof DownloadResponse>;

/** `GET /v1/files/<key>` credentials: expiry in epoch seconds and the hex HMAC over key and expiry. */
export const SignedFileQuery = z.object({
  exp: z.string().regex(/^\d{1,12}$/, "epoch seconds").transform(Number),
  sig: z.string().regex(/^[0-9a-f]{64}$/i, "hex HMAC-SHA256"),
});

/** With `client_id`, the lake (detail rows in R2) is read too; without, only D1 and the ledgers. */
export const ReconcileQuery = z.object({ client_id: ClientId.optional() });

/** One count that differs between the billed lines (D1), the Durable Object ledger and, when read, the lake. */
export const ReconcileDifference = z.object({
  client_id: ClientId,
  category: z.string(),
  country: z.string(),
  billed: z.number().int(),
  ledger: z.number().int(),
  /** null when the lake was not read. */
  lake: z.number().int().nullable(),
});
export type ReconcileDifference = z.infer<typeof ReconcileDifference>;
export const ReconcileResponse = z.object({
  date: IsoDate,
  revision: z.number().int(),
  clients: z.number().int(),
  billed_total: z.number().int(),
  ledger_total: z.number().int(),
  lake_total: z.number().int().nullable(),
  ok: z.boolean(),
  differences: z.array(ReconcileDifference),
});
export type ReconcileResponse = z.infer<typeof ReconcileResponse>;
