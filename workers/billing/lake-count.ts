import type { MessagePricing } from "../../durable-objects/billable-ledger.ts";
import { UNKNOWN_CATEGORY, UNKNOWN_COUNTRY } from "../../schema/billing.ts";
import { DAY_MS, localDayRange } from "../../schema/time.ts";
import { flushBeforeLakeRead } from "../client-counters.ts";
import { COLUMN_INDEX } from "../lake/columns.ts";
import { reportRows } from "../lake/report.ts";
import type { BillingClient } from "./run.ts";
import { lineKey } from "./store.ts";

/**
 * How far around the day the lake is read: before it to find a message's earlier billable status,
 * after it to find the pricing of a delivered/read of the day that came without (Meta can price a
 * message only on a later status, past midnight). A message first delivered longer before, or priced
 * only longer after, is counted on the wrong day by this check (the ledger, which keeps every
 * message, is right): such a difference is explained by looking up the message.
 */
const LAKE_WINDOW_DAYS = 2;

const BILLING_STATUSES: ReadonlySet<string> = new Set(["delivered", "read"]);
const { message_id: MESSAGE, status: STATUS, occurred_at: OCCURRED, billable: BILLABLE, category: CATEGORY, country: COUNTRY } = COLUMN_INDEX;

/**
 * Billable messages of the client's local `date` recomputed from the detail rows in the lake, by the
 * ledger's rule, after flushing the client's outbox so the lake holds everything the Durable Object
 * has accepted: each message is billed on its first delivered/read that has billable pricing, its
 * own or, when it came without (`billable` null), its message's from any status that had it.
 */
export async function lakeBillable(env: Env, client: BillingClient, date: string): Promise<Map<string, number>> {
  await flushBeforeLakeRead(env, client);
  const [start, end] = localDayRange(date, client.timezone);
  const pricing = new Map<string, MessagePricing>();
  const billingRows = new Map<string, { at: number; own: MessagePricing | null }[]>();
  for await (const rows of reportRows(env.LAKE, client.id, { from: start - LAKE_WINDOW_DAYS * DAY_MS, to: end + LAKE_WINDOW_DAYS * DAY_MS })) {
    for (const r of rows) {
      const id = r[MESSAGE] as string;
      const billable = r[BILLABLE] as boolean | null;
      const own = billable === true ? { category: r[CATEGORY] as string | null, country: r[COUNTRY] as string | null } : null;
      if (own && !pricing.has(id)) pricing.set(id, own);
      if (!BILLING_STATUSES.has(r[STATUS] as string) || billable === false) continue;
      let list = billingRows.get(id);
      if (!list) billingRows.set(id, (list = []));
      list.push({ at: r[OCCURRED] as number, own });
    }
  }
  const counts = new Map<string, number>();
  for (const [id, list] of billingRows) {
    const message = pricing.get(id);
    let first: { at: number; priced: MessagePricing } | null = null;
    for (const row of list) {
      const priced = row.own ?? message;
      if (priced && (!first || row.at < first.at)) first = { at: row.at, priced };
    }
    if (!first || first.at < start || first.at >= end) continue;
    const k = lineKey({ clientId: client.id, category: first.priced.category ?? UNKNOWN_CATEGORY, country: first.priced.country ?? UNKNOWN_COUNTRY });
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}
