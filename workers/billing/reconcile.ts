import type { ReconcileResponse } from "../../schema/billing.ts";
import { allClients } from "./schedule.ts";
import { ledgersOf } from "./run.ts";
import { dayState, lineKey, storedLines } from "./store.ts";

/**
 * Compares, for `date`, the billed counts in D1 with every client's Durable Object ledger. A
 * difference means the day needs a run (late events, a client whose day had not closed) or, if a
 * run does not clear it, a defect worth investigating.
 */
export async function reconcileDay(env: Env, date: string): Promise<ReconcileResponse> {
  const clients = await allClients(env.DB);
  const [ledgers, billed, state] = await Promise.all([
    ledgersOf(env, date, clients),
    storedLines(env.DB, date, clients.map((c) => c.id)),
    dayState(env.DB, date),
  ]);
  const counts = new Map<string, { client_id: string; category: string; country: string; billed: number; ledger: number }>();
  const entry = (clientId: string, category: string, country: string) => {
    const k = lineKey({ clientId, category, country });
    let e = counts.get(k);
    if (!e) counts.set(k, (e = { client_id: clientId, category, country, billed: 0, ledger: 0 }));
    return e;
  };
  for (const l of billed) entry(l.clientId, l.category, l.country).billed += l.billableCount;
  clients.forEach((c, i) => {
    for (const l of ledgers[i]!) entry(c.id, l.category, l.country).ledger += l.count;
  });
  const all = [...counts.values()];
  const differences = all
    .filter((e) => e.billed !== e.ledger)
    .sort((a, b) => lineKey({ clientId: a.client_id, ...a }).localeCompare(lineKey({ clientId: b.client_id, ...b })));
  return {
    date,
    revision: state.revision,
    clients: clients.length,
    billed_total: all.reduce((s, e) => s + e.billed, 0),
    ledger_total: all.reduce((s, e) => s + e.ledger, 0),
    ok: differences.length === 0,
    differences,
  };
}
