import { env } from "cloudflare:workers";
import { createExecutionContext, evictDurableObject, runDurableObjectAlarm, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index.ts";
import { clientLedgerLinesByDay } from "../../workers/client-counters.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { deliveryPlan, toRequest, type Credentials } from "../ground-truth/delivery.ts";
import { billingDates, billingLeg, countersLeg, describe as explain, lakeLeg } from "../ground-truth/invariant.ts";
import { groundTruth, int, pick, prng, type GroundTruth } from "../ground-truth/model.ts";
import { BASE, admin, authed, call, createClient, ingestKey } from "./helpers.ts";
import { breakLakeFlush, envWithFlakyD1, injected } from "./invariant-faults.ts";

/**
 * The invariant under duplicated, reordered and late delivery with faults: for every client and
 * day, live counters = rows in the lake = billed messages = the ground truth. Seeds are fixed so a
 * failure reproduces; the chaos runner (`npm run test:chaos`) draws fresh ones.
 */

const TIMEZONES = ["America/Sao_Paulo", "Asia/Kolkata", "UTC"];
/** Requests in flight at once, as Meta and a bridge both send concurrently. */
const CONCURRENCY = 4;

/** Each client's shard count, for reading its ledger. */
const shardsOf = new Map<string, number>();

/** Three clients, one per time zone; `shards` of them each (1 when absent). */
async function setup(seed: number, messagesPerClient: number, shards: number[] = []): Promise<{ truth: GroundTruth; creds: Credentials }> {
  const clients = await Promise.all(TIMEZONES.map((timezone, i) => createClient({ timezone, shards: shards[i] ?? 1 })));
  clients.forEach((c, i) => shardsOf.set(c.id, shards[i] ?? 1));
  const phones = new Map(clients.map((c) => [c.id, c.phones[0]!]));
  // Events span three days that closed a few days ago, so every billing day can be run.
  const startDay = new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10);
  const truth = groundTruth({
    seed,
    clients: clients.map((c, i) => ({ id: c.id, timezone: TIMEZONES[i]!, phoneNumberId: phones.get(c.id)! })),
    startDay,
    spanDays: 3,
    messagesPerClient,
  });
  return { truth, creds: { appSecret: env.WHATSAPP_APP_SECRET, ingestKey: await ingestKey(), phoneOf: (id) => phones.get(id)! } };
}

/** Sends like an at-least-once sender: a 503 is retried, anything but 200 fails the test. */
async function send(req: { path: string; init: RequestInit }): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const res = await call(req.path, req.init);
    if (res.status === 200) return attempt;
    const body = await res.text();
    if (res.status !== 503 || attempt >= 5) throw new Error(`${req.path}: HTTP ${res.status} ${body}`);
  }
}

/** Evicts a client's ClientCounter; false when it was not running (nothing to evict). */
async function evictIfRunning(clientId: string): Promise<boolean> {
  try {
    await evictDurableObject(counterOf(env, clientId));
    return true;
  } catch (e) {
    if (/not currently running/.test((e as Error).message)) return false;
    throw e;
  }
}

async function allLegs(truth: GroundTruth) {
  const token = await admin();
  const differences = [
    ...(await countersLeg(call, token, truth)),
    ...(await lakeLeg(call, token, truth)),
    ...(await billingLeg(call, token, truth)),
  ];
  // The ledger the Durable Object bills from, read directly, against the truth.
  for (const c of truth.clients) {
    for (const day of truth.days.get(c.id)!) {
      const lines = (await clientLedgerLinesByDay(env, { id: c.id, shards: shardsOf.get(c.id)! }, [day]))[day]!;
      const actual = new Map(lines.map((l) => [`${l.category}|${l.country}`, l.count]));
      const expected = truth.billable.get(c.id)?.get(day) ?? new Map<string, number>();
      for (const k of new Set([...actual.keys(), ...expected.keys()])) {
        if ((actual.get(k) ?? 0) !== (expected.get(k) ?? 0)) {
          differences.push({ leg: "ledger", client: c.id, key: `${day} ${k}`, expected: expected.get(k) ?? 0, actual: actual.get(k) ?? 0 });
        }
      }
    }
  }
  return differences;
}

describe("invariant: counters = lake = billing = ground truth", () => {
  it("holds for every event delivered 1–3 times, shuffled across webhook and Kafka requests, late and read-before-delivered, for a sharded client too", async () => {
    const seed = 20261122;
    const { truth, creds } = await setup(seed, 60, [1, 1, 3]);
    const { deliveries, stats } = deliveryPlan(truth);
    for (let i = 0; i < deliveries.length; i += CONCURRENCY) {
      await Promise.all(deliveries.slice(i, i + CONCURRENCY).map(async (d) => send(await toRequest(d, creds))));
    }
    const differences = await allLegs(truth);
    console.log(`seed ${seed}: ${truth.events.length} distinct events, ${stats.copies} copies in ${stats.requests} requests, ${differences.length} differences`);
    expect(explain(differences), `seed ${seed}`).toBe("");
  }, 60_000);

  it("holds when a client grows from 1 to 3 shards mid-stream, while statuses of its messages are still arriving", async () => {
    const seed = 20261130;
    const { truth, creds } = await setup(seed, 60);
    const { deliveries, stats } = deliveryPlan(truth);
    const grown = truth.clients[1]!.id;
    const half = Math.floor(deliveries.length / CONCURRENCY / 2) * CONCURRENCY;
    for (let i = 0; i < deliveries.length; i += CONCURRENCY) {
      if (i === half) {
        const res = await call(`/v1/admin/clients/${grown}`, authed(await admin(), { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ shards: 3 }) }));
        expect(res.status).toBe(200);
        shardsOf.set(grown, 3);
      }
      await Promise.all(deliveries.slice(i, i + CONCURRENCY).map(async (d) => send(await toRequest(d, creds))));
    }
    const differences = await allLegs(truth);
    console.log(`seed ${seed}: ${stats.copies} copies in ${stats.requests} requests, grown at request ${half}, ${differences.length} differences`);
    expect(explain(differences), `seed ${seed}`).toBe("");
  }, 60_000);

  it("holds through Durable Object evictions mid-stream, R2 failing during flushes and D1 failing during billing", async () => {
    const seed = 424242;
    const { truth, creds } = await setup(seed, 60);
    const { deliveries, stats } = deliveryPlan(truth);
    const rng = prng(seed + 2);
    const ids = truth.clients.map((c) => c.id);
    const outages = new Map<string, { restore: () => void; waves: number }>();
    let evictions = 0;
    let failedFlushes = 0;
    const before = { ...injected };

    // A fixed fault schedule per wave (which client it hits is drawn from the seed).
    for (let i = 0, wave = 0; i < deliveries.length; i += CONCURRENCY, wave++) {
      const sending = deliveries.slice(i, i + CONCURRENCY).map(async (d) => send(await toRequest(d, creds)));
      // An eviction lands while the wave's requests are in flight.
      if (wave % 3 === 2 && (await evictIfRunning(pick(rng, ids)))) evictions += 1;
      await Promise.all(sending);
      for (const [id, o] of outages) {
        if (--o.waves > 0) continue;
        o.restore();
        outages.delete(id);
      }
      const id = pick(rng, ids);
      if (wave % 4 === 1 && !outages.has(id)) {
        // R2 down for this client's flushes for a few waves; the alarm fails and keeps the outbox.
        outages.set(id, { restore: await breakLakeFlush(id), waves: 1 + int(rng, 3) });
        if (await runDurableObjectAlarm(counterOf(env, id))) failedFlushes += 1;
      } else if (wave % 4 === 3) {
        await runDurableObjectAlarm(counterOf(env, id));
      }
    }
    for (const o of outages.values()) o.restore();

    // D1 fails while a billing day commits: a server error, nothing billed, and the next run is exact.
    const date = billingDates(truth)[1]!;
    const flaky = envWithFlakyD1();
    flaky.setDown(true);
    const ctx = createExecutionContext();
    const failed = await worker.fetch(
      new Request(`${BASE}/v1/billing/${date}/run`, authed(await admin(), { method: "POST" })),
      flaky.env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    // Retryable (whichever D1 read or write failed first): nothing was committed, so the caller runs it again.
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toMatch(/_unavailable$/);
    const untouched = (await (await call(`/v1/billing?date=${date}`, authed(await admin()))).json()) as { lines: { client_id: string }[] };
    expect(untouched.lines.filter((l) => ids.includes(l.client_id))).toEqual([]);
    flaky.setDown(false);

    const differences = await allLegs(truth);
    const faults = { evictions, failedFlushes, r2PutsFailed: injected.r2PutsFailed - before.r2PutsFailed, d1CallsFailed: injected.d1CallsFailed - before.d1CallsFailed };
    console.log(`seed ${seed}: ${stats.copies} copies in ${stats.requests} requests, faults ${JSON.stringify(faults)}, ${differences.length} differences`);
    expect(faults.evictions).toBeGreaterThan(0);
    expect(faults.r2PutsFailed).toBeGreaterThan(0);
    expect(faults.d1CallsFailed).toBeGreaterThan(0);
    expect(explain(differences), `seed ${seed}`).toBe("");
  }, 60_000);
});
