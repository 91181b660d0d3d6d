import { UNKNOWN_CATEGORY, UNKNOWN_COUNTRY } from "../../durable-objects/client-counter.ts";
import { DAY_MS, localDayRange } from "../../schema/time.ts";
import { flushClient } from "../client-counters.ts";
import { COLUMN_INDEX } from "../lake/columns.ts";
import { reportRows } from "../lake/report.ts";
import type { BillingClient } from "./run.ts";
import { lineKey } from "./store.ts";

/**
 * How far before the day the lake is read to find a message's earlier billable status. A message
 * first delivered longer ago and read on the day is counted on the day by this check (the ledger,
 * which keeps every message, is right): such a difference is explained by looking up the message.
 */
export const LAKE_LOOKBACK_DAYS = 2;

const BILLING_STATUSES: ReadonlySet<string> = new Set(["delivered", "read"]);
const { message_id: MESSAGE, occurred_at: OCCURRED, billable: BILLABLE, category: CATEGORY, country: COUNTRY } = COLUMN_INDEX;

/**
 * Billable messages of the client's local `date` recomputed from the detail rows in the lake, by the
 * ledger's rule (first billable delivered/read of each message), after flushing the client's outbox
 * so the lake holds everything the Durable Object has accepted.
 */
export async function lakeBillable(env: Env, client: BillingClient, date: string): Promise<Map<string, number>> {
  await flushClient(env, client);
  const [start, end] = localDayRange(date, client.timezone);
  const first = new Map<string, { at: number; category: string; country: string }>();
  const filter = { from: start - LAKE_LOOKBACK_DAYS * DAY_MS, to: end, statuses: BILLING_STATUSES };
  for await (const rows of reportRows(env.LAKE, client.id, filter)) {
    for (const r of rows) {
      if (r[BILLABLE] !== true) continue;
      const id = r[MESSAGE] as string;
      const at = r[OCCURRED] as number;
      const prev = first.get(id);
      if (prev && prev.at <= at) continue;
      first.set(id, { at, category: (r[CATEGORY] as string | null) ?? UNKNOWN_CATEGORY, country: (r[COUNTRY] as string | null) ?? UNKNOWN_COUNTRY });
    }
  }
  const counts = new Map<string, number>();
  for (const m of first.values()) {
    if (m.at < start) continue;
    const k = lineKey({ clientId: client.id, category: m.category, country: m.country });
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}
