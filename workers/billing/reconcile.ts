import type { ReconcileDifference, ReconcileResponse } from "../../schema/billing.ts";
import { clientNotFound } from "../client-records.ts";
import { lakeBillable } from "./lake-count.ts";
import { ledgersOf, type BillingClient } from "./run.ts";
import { billingClients } from "./schedule.ts";
import { dayState, lineKey, storedLines } from "./store.ts";

/**
 * Compares, for `date`, the billed counts in D1 with every client's Durable Object ledger and, for
 * one client (`clientId`), with the billable messages found in the lake. Reading the lake costs a
 * scan of the client's detail rows, so the day-wide check stays on D1 and the ledgers. A difference
 * means the day needs a run (late events, a day not yet closed) or, if a run does not clear it, a
 * defect worth investigating.
 */
export async function reconcileDay(env: Env, date: string, clientId?: string): Promise<ReconcileResponse> {
  let clients: BillingClient[] = await billingClients(env.DB);
  if (clientId !== undefined) {
    clients = clients.filter((c) => c.id === clientId);
    if (clients.length === 0) throw clientNotFound(clientId);
  }
  const withLake = clientId !== undefined;
  const [ledgers, billed, state, lakes] = await Promise.all([
    ledgersOf(env, date, clients),
    storedLines(env.DB, date, clients.map((c) => c.id)),
    dayState(env.DB, date),
    withLake ? Promise.all(clients.map((c) => lakeBillable(env, c, date))) : null,
  ]);
  const counts = new Map<string, ReconcileDifference>();
  const entry = (clientId: string, category: string, country: string) => {
    const k = lineKey({ clientId, category, country });
    let e = counts.get(k);
    if (!e) counts.set(k, (e = { client_id: clientId, category, country, billed: 0, ledger: 0, lake: withLake ? 0 : null }));
    return e;
  };
  for (const l of billed) entry(l.clientId, l.category, l.country).billed += l.billableCount;
  clients.forEach((c, i) => {
    for (const l of ledgers[i]!) entry(c.id, l.category, l.country).ledger += l.count;
  });
  for (const lake of lakes ?? []) {
    for (const [k, n] of lake) {
      const [client, category, country] = k.split("\u0000") as [string, string, string];
      entry(client, category, country).lake! += n;
    }
  }
  const all = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, e]) => e);
  const differences = all.filter((e) => e.billed !== e.ledger || (e.lake !== null && e.lake !== e.ledger));
  const sum = (f: (e: ReconcileDifference) => number) => all.reduce((s, e) => s + f(e), 0);
  return {
    date,
    revision: state.revision,
    clients: clients.length,
    billed_total: sum((e) => e.billed),
    ledger_total: sum((e) => e.ledger),
    lake_total: withLake ? sum((e) => e.lake ?? 0) : null,
    ok: differences.length === 0,
    differences,
  };
}
