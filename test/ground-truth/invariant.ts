import { parquetReadObjects } from "hyparquet";
import { decompressors } from "../../workers/lake/codec.ts";
import { TRUTH_STATUSES, type GroundTruth } from "./model.ts";

/**
 * The invariant, checked only through the public HTTP API (so the same code runs inside workerd and
 * against a real `wrangler dev`): for every client and day, live counters = rows in the lake =
 * billed messages = the ground truth. Each leg returns its differences; none means it holds.
 */

/** Calls the API at a path (the test's in-process Worker, or fetch against a base URL). */
export type Api = (path: string, init?: RequestInit) => Promise<Response>;

export interface Difference {
  leg: "counters" | "lake" | "billing" | "ledger";
  client: string;
  key: string;
  expected: number;
  actual: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

async function json<T>(res: Response, what: string): Promise<T> {
  if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

function bearer(token: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } };
}

/** Live counters (`GET /v1/clients/:id/counters`) equal the truth, minute by minute and status by status. */
export async function countersLeg(api: Api, token: string, truth: GroundTruth): Promise<Difference[]> {
  const [from, to] = truth.range;
  const out: Difference[] = [];
  for (const c of truth.clients) {
    const body = await json<{ minutes: ({ minute: number } & Record<string, number>)[] }>(
      await api(`/v1/clients/${c.id}/counters?from=${iso(from)}&to=${iso(to)}`, bearer(token)),
      `counters of ${c.id}`,
    );
    const actual = new Map(body.minutes.map((m) => [m.minute, m]));
    const expected = truth.minutes.get(c.id) ?? new Map();
    for (const minute of new Set([...actual.keys(), ...expected.keys()])) {
      for (const s of TRUTH_STATUSES) {
        const e = expected.get(minute)?.[s] ?? 0;
        const a = actual.get(minute)?.[s] ?? 0;
        if (e !== a) out.push({ leg: "counters", client: c.id, key: `${iso(minute)} ${s}`, expected: e, actual: a });
      }
    }
  }
  return out;
}

/**
 * Rows in the lake: after `POST /v1/admin/flush`, the Parquet report holds each true event exactly
 * once and nothing else.
 */
export async function lakeLeg(api: Api, token: string, truth: GroundTruth): Promise<Difference[]> {
  const [from, to] = truth.range;
  const out: Difference[] = [];
  for (const c of truth.clients) {
    await json(await api(`/v1/admin/flush?client_id=${c.id}`, bearer(token, { method: "POST" })), `flush of ${c.id}`);
    const res = await api(`/v1/clients/${c.id}/report?from=${iso(from)}&to=${iso(to)}&format=parquet`, bearer(token));
    if (res.status !== 200) throw new Error(`report of ${c.id}: HTTP ${res.status} ${await res.text()}`);
    const rows = await parquetReadObjects({ file: await res.arrayBuffer(), columns: ["event_id"], compressors: decompressors });
    const actual = new Map<string, number>();
    for (const r of rows) actual.set(r.event_id as string, (actual.get(r.event_id as string) ?? 0) + 1);
    const expected = new Set(truth.events.filter((e) => e.client_id === c.id).map((e) => e.event_id));
    for (const id of new Set([...actual.keys(), ...expected])) {
      const e = expected.has(id) ? 1 : 0;
      const a = actual.get(id) ?? 0;
      if (e !== a) out.push({ leg: "lake", client: c.id, key: id, expected: e, actual: a });
    }
  }
  return out;
}

interface BillingBody {
  lines: { client_id: string; category: string; country: string; billable_count: number }[];
}
interface ReconcileBody {
  differences: { client_id: string; category: string; country: string; billed: number; ledger: number }[];
}

/** Every local day the events fall on, over all clients. */
export function billingDates(truth: GroundTruth): string[] {
  return [...new Set([...truth.days.values()].flat())].sort();
}

/**
 * Billing: `POST /v1/billing/:date/run` for every day, then the billed lines (`GET /v1/billing`)
 * equal the truth's billable messages per client × local day × category × country, and the day's
 * reconciliation finds the Durable Object ledgers equal to what was billed.
 */
export async function billingLeg(api: Api, token: string, truth: GroundTruth): Promise<Difference[]> {
  const out: Difference[] = [];
  const ours = new Set(truth.clients.map((c) => c.id));
  for (const date of billingDates(truth)) {
    await json(await api(`/v1/billing/${date}/run`, bearer(token, { method: "POST" })), `billing run of ${date}`);
    for (const c of truth.clients) {
      const body = await json<BillingBody>(await api(`/v1/billing?date=${date}&client_id=${c.id}`, bearer(token)), `billing of ${date}`);
      const actual = new Map(body.lines.map((l) => [`${l.category}|${l.country}`, l.billable_count]));
      const expected = truth.billable.get(c.id)?.get(date) ?? new Map<string, number>();
      for (const k of new Set([...actual.keys(), ...expected.keys()])) {
        const e = expected.get(k) ?? 0;
        const a = actual.get(k) ?? 0;
        if (e !== a) out.push({ leg: "billing", client: c.id, key: `${date} ${k}`, expected: e, actual: a });
      }
    }
    const rec = await json<ReconcileBody>(await api(`/v1/billing/${date}/reconcile`, bearer(token)), `reconcile of ${date}`);
    for (const d of rec.differences.filter((d) => ours.has(d.client_id))) {
      out.push({ leg: "ledger", client: d.client_id, key: `${date} ${d.category}|${d.country}`, expected: d.billed, actual: d.ledger });
    }
  }
  return out;
}

/** A short, readable account of differences (the first few of each leg). */
export function describe(differences: Difference[], limit = 10): string {
  return differences
    .slice(0, limit)
    .map((d) => `${d.leg} ${d.client} ${d.key}: expected ${d.expected}, got ${d.actual}`)
    .join("\n");
}
