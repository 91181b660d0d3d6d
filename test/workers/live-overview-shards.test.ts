import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { emptyCounts } from "../../durable-objects/client-shards.ts";
import type { Overview } from "../../durable-objects/overview.ts";
import { forwardIntervalMs } from "../../durable-objects/forward-interval.ts";
import { overviewShard, overviewShardStub, overviewShards } from "../../durable-objects/overview-shards.ts";
import type { ClientRollup } from "../../durable-objects/rollups.ts";
import type { OverviewLiveMessage } from "../../schema/live.ts";
import { MINUTE_MS, localDate, minuteOf } from "../../schema/time.ts";
import { status } from "./billing-fixtures.ts";
import { admin, authed, createClient, ingestKey, unique, withClockAhead, withEnv, withMethods } from "./helpers.ts";
import { LiveSocket, clearOfMinuteTurn } from "./live-helpers.ts";

/**
 * The suite runs with one Overview shard (vitest.config.ts); these tests drive the others directly,
 * as the ingest Worker and the ClientCounters do with OVERVIEW_SHARDS > 1.
 */
type Msg = OverviewLiveMessage;
const top = () => overviewShardStub(env, 0);
const sentOf = (m: Msg, id: string) => m.clients.find((c) => c.client_id === id)?.today.sent;
const viewer = async () => LiveSocket.connect("/v1/live", { authorization: `Bearer ${await admin()}` });
/** Runs inside an Overview instance, with its private parts reachable. */
interface Inner {
  rollup: Overview["rollup"];
  checkpoint(): void;
  rollups: Map<string, unknown>;
  forwarding: Map<string, ClientRollup>;
  forwardTimer: ReturnType<typeof setTimeout> | null;
  gatherRetryAt: Map<number, number>;
  env: Env;
}
const inside = <T,>(stub: DurableObjectStub<Overview>, fn: (o: Inner, state: DurableObjectState) => T) =>
  runInDurableObject(stub, (o: Overview, state) => fn(o as unknown as Inner, state));

/** A client's rollup of `sent` statuses in the current minute, as its ClientCounter would send it. */
function rollupOf(clientId: string, sent: number): ClientRollup {
  const at = Date.now();
  return { client_id: clientId, day: localDate(at, "UTC"), today: { ...emptyCounts(), sent }, minutes: [{ minute: minuteOf(at), ...emptyCounts(), sent }], at };
}

/**
 * Has `overview`'s calls to the Overview shard `shard` go through `over` (as when that shard is
 * unreachable or hangs); returns what puts the real binding back.
 */
async function interceptShard(
  overview: DurableObjectStub<Overview>,
  shard: number,
  over: (real: DurableObjectStub<Overview>) => Partial<DurableObjectStub<Overview>>,
): Promise<() => Promise<void>> {
  const target = env.OVERVIEW.idFromName(`overview-${shard}`);
  const namespace = withMethods(env.OVERVIEW, {
    // The stub is made in the object's own context: one made in the test's could not be called there.
    get: (objectId: DurableObjectId) => {
      const stub = env.OVERVIEW.get(objectId);
      return objectId.equals(target) ? withMethods(stub, over(stub)) : stub;
    },
  });
  await inside(overview, (o) => void (o.env = { ...o.env, OVERVIEW: namespace }));
  return () => inside(overview, (o) => void (o.env = { ...o.env, OVERVIEW: env.OVERVIEW }));
}

/** Makes `shard`'s next `times` forwards to the top fail; `left()` is how many are still to fail. */
async function failForwards(shard: DurableObjectStub<Overview>, times: number): Promise<{ left(): number; restore(): Promise<void> }> {
  let failures = times;
  const restore = await interceptShard(shard, 0, (real) => {
    const forwarded = (...args: Parameters<Overview["forwarded"]>) => (failures-- > 0 ? Promise.reject(new Error("top unreachable")) : real.forwarded(...args));
    return { forwarded } as never;
  });
  return { left: () => failures, restore };
}


/** The clients the top holds in SQLite (its own) after a checkpoint. */
const savedByTop = () => inside(top(), (o, state) => (o.checkpoint(), state.storage.sql.exec<{ client_id: string }>("SELECT client_id FROM rollups").toArray().map((r) => r.client_id)));

/** A new client, and a viewer of the top past its snapshot. */
async function watchedClient(id = unique("client")): Promise<{ id: string; ws: LiveSocket }> {
  await createClient({ id });
  const ws = await viewer();
  await ws.next<Msg>();
  return { id, ws };
}

/** A client id that OVERVIEW_SHARDS = 4 puts on a shard other than the top. */
function idOffTheTop(): string {
  for (;;) {
    const id = unique("client");
    if (overviewShard(id, 4) !== 0) return id;
  }
}

describe("sharded overview", () => {
  // The top primes every client it never heard from at its first viewer, with the counts their
  // objects hold: done first, so that it cannot overtake the made-up rollups below.
  beforeAll(async () => {
    const ws = await viewer();
    await ws.next<Msg>();
    const primed = () => inside(top(), (_o, state) => state.storage.sql.exec("SELECT 1 FROM meta WHERE key = 'primed'").toArray().length);
    await vi.waitFor(async () => expect(await primed()).toBe(1), { timeout: 4_000, interval: 20 });
    ws.close();
  });

  it("a restarted top gathers what the other shards hold before its first snapshot", async () => {
    const { id } = await createClient();
    const shard3 = overviewShardStub(env, 3);
    await shard3.rollup(rollupOf(id, 5));
    const topHolds = () => inside(top(), (o) => o.rollups.has(id));
    await vi.waitFor(async () => expect(await topHolds()).toBe(true), { timeout: 4_000, interval: 20 });
    await inside(top(), (_o, state) => state.abort("restart")).catch(() => undefined);
    expect(await topHolds()).toBe(false);

    const ws = await viewer();
    expect(sentOf(await ws.next<Msg>(), id)).toBe(5);
    ws.close();
  });

  it("wakes from hibernation holding every shard's clients again, without resending its viewers their rows", async () => {
    // The minute tick resends every row: not while the woken top is watched for resends. The eviction
    // may wait out the checkpoint timer (5 s).
    await clearOfMinuteTurn(10_000);
    const { id: quiet, ws } = await watchedClient();
    const other = unique("client");
    await createClient({ id: other });
    await overviewShardStub(env, 2).rollup(rollupOf(quiet, 6));
    await ws.nextWhere<Msg>((m) => (sentOf(m, quiet) ?? 0) > 0);
    await evictDurableObject(top());
    await overviewShardStub(env, 3).rollup(rollupOf(other, 1));
    const update = await ws.nextWhere<Msg>((m) => (sentOf(m, other) ?? 0) > 0);
    // Not an exact list: a shard the runtime evicted while this test waited (10 s idle locally)
    // forwards its recent rollups again when `other`'s wakes it, and an earlier test's client rides along.
    expect(update.clients.map((c) => c.client_id)).not.toContain(quiet);
    expect(await inside(top(), (o) => o.rollups.has(quiet))).toBe(true);
    ws.close();
  });

  it("a woken top shows another shard's change that its first gather took in while the change's forward was on its way", async () => {
    // The minute tick resends every row: not while the woken top is watched. The eviction may wait out
    // the checkpoint timer (5 s).
    await clearOfMinuteTurn(15_000);
    const { id: a, ws } = await watchedClient();
    const b = unique("client");
    await createClient({ id: b });
    const shard2 = overviewShardStub(env, 2);
    const shard3 = overviewShardStub(env, 3);
    await shard2.rollup(rollupOf(a, 1));
    await shard3.rollup(rollupOf(b, 1));
    await vi.waitFor(() => expect([a, b].every((id) => ws.seen.some((m) => sentOf(m as Msg, id) === 1))).toBe(true), { timeout: 4_000, interval: 20 });
    await evictDurableObject(top());
    // b's next rollup reaches shard 3, whose forward of it is still on its way to the top...
    let arrive!: () => void;
    const onTheWay = new Promise<void>((resolve) => (arrive = resolve));
    let forwards = 0;
    const restore = await interceptShard(shard3, 0, (real) => ({
      forwarded: async (...args: Parameters<Overview["forwarded"]>) => (forwards++, await onTheWay, real.forwarded(...args)),
    }) as never);
    try {
      await shard3.rollup(rollupOf(b, 2));
      await vi.waitFor(() => expect(forwards).toBe(1), { timeout: 2_000, interval: 10 });
      // ...when a's rollup wakes the top through shard 2: its first update gathers every shard, b's 2 with them.
      await shard2.rollup(rollupOf(a, 2));
      await ws.nextWhere<Msg>((m) => sentOf(m, a) === 2);
      arrive();
      // Before, the forward merged nothing new and b's row showed 1 until the minute tick.
      await vi.waitFor(() => expect(ws.seen.some((m) => sentOf(m as Msg, b) === 2)).toBe(true), { timeout: 3_000, interval: 20 });
    } finally {
      arrive();
      await restore();
      ws.close();
    }
  });

  it("a top woken by its minute tick moves another shard's quiet client's minute into the hour", async () => {
    // The story stays within one minute; an eviction may wait out the checkpoint timer (5 s).
    await clearOfMinuteTurn(15_000);
    const { id: quiet, ws } = await watchedClient();
    await overviewShardStub(env, 2).rollup(rollupOf(quiet, 6));
    await ws.nextWhere<Msg>((m) => (sentOf(m, quiet) ?? 0) > 0);
    // Hibernates (memory gone, sockets kept) until its tick, a minute on.
    await evictDurableObject(top());
    const seen = ws.seen.length;
    try {
      await withClockAhead(MINUTE_MS, async () => expect(await runDurableObjectAlarm(top())).toBe(true));
      // Before, the tick marked the rows it held before gathering the other shards': none of theirs went out.
      const moved = () => ws.seen.slice(seen).flatMap((m) => (m as Msg).clients.filter((c) => c.client_id === quiet).map((c) => [c.minute.sent, c.hour.sent]));
      await vi.waitFor(() => expect(moved()).toEqual([[0, 6]]), { timeout: 2_000, interval: 20 });
    } finally {
      // The instance dated its last update a minute ahead: the next tests' updates would wait for it.
      await inside(top(), (_o, state) => state.abort("restart")).catch(() => undefined);
      ws.close();
    }
  });

  it("a shard that restarts before forwarding sends what it saved again", async () => {
    const { id, ws } = await watchedClient();
    const shard1 = overviewShardStub(env, 1);
    // Saved, then the instance ends before its forward went out (a deploy, a crash).
    await inside(shard1, async (o) => {
      await o.rollup(rollupOf(id, 2));
      clearTimeout(o.forwardTimer!);
      o.forwardTimer = null;
      o.forwarding.clear();
      o.checkpoint();
    });
    await inside(shard1, (_o, state) => state.abort("restart")).catch(() => undefined);
    // The next call starts a new instance.
    await overviewShardStub(env, 1).saved();
    expect(sentOf(await ws.nextWhere<Msg>((m) => (sentOf(m, id) ?? 0) > 0), id)).toBe(2);
    ws.close();
  });

  it("a failed forward is sent again", async () => {
    const { id, ws } = await watchedClient();
    const shard2 = overviewShardStub(env, 2);
    const failing = await failForwards(shard2, 1);
    await shard2.rollup(rollupOf(id, 1));
    expect(sentOf(await ws.nextWhere<Msg>((m) => (sentOf(m, id) ?? 0) > 0), id)).toBe(1);
    expect(failing.left()).toBe(-1);
    await failing.restore();
    ws.close();
  });

  it("a shard forwards a relayed call in one call, and at most every 50 ms however fast rollups come", async () => {
    const ids = [unique("client"), unique("client"), unique("client")];
    const shard = overviewShardStub(env, 2);
    const calls: number[] = [];
    const restore = await interceptShard(shard, 0, (real) => ({
      forwarded: (...args: Parameters<Overview["forwarded"]>) => (calls.push(args[1].length), real.forwarded(...args)),
    }) as never);
    // Clear of this shard's forwards of earlier tests.
    await new Promise((resolve) => setTimeout(resolve, 150));
    await shard.relayed(ids.map((id) => rollupOf(id, 1)));
    await vi.waitFor(() => expect(calls).toEqual([3]), { timeout: 1_000, interval: 5 });

    const started = Date.now();
    for (let sent = 2; sent <= 30; sent++) {
      await shard.rollup(rollupOf(ids[0]!, sent));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const elapsed = Date.now() - started;
    const holds = () => inside(top(), (o) => (o.rollups.get(ids[0]!) as Map<number, ClientRollup> | undefined)?.get(0)?.today.sent);
    await vi.waitFor(async () => expect(await holds()).toBe(30), { timeout: 1_000, interval: 10 });
    expect(calls.length - 1).toBeLessThanOrEqual(Math.floor(elapsed / forwardIntervalMs(overviewShards(env))) + 2);
    await restore();
  });

  it("spaces a shard's forwards 50 ms apart, more from 27 shards on, so the top gets at most 500 a second", () => {
    expect([1, 4, 20, 26, 27, 64].map(forwardIntervalMs)).toEqual([50, 50, 50, 50, 52, 126]);
    for (let n = 2; n <= 64; n++) expect(((n - 1) * 1_000) / forwardIntervalMs(n)).toBeLessThanOrEqual(500);
  });

  it("a rename whose forward failed reaches the top with the next try", async () => {
    const { id, ws } = await watchedClient(idOffTheTop());
    const shard = overviewShardStub(env, overviewShard(id, 4));
    // The top has heard from (and gathered) that shard before: a first gather re-reads the client list.
    await shard.rollup(rollupOf(id, 1));
    await ws.nextWhere<Msg>((m) => (sentOf(m, id) ?? 0) > 0);
    const failing = await failForwards(shard, 1);
    const res = await withEnv({ OVERVIEW_SHARDS: "4" }, `/v1/admin/clients/${id}`, authed(await admin(), { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Renamed later" }) }));
    expect(res.status).toBe(200);
    await ws.nextWhere<Msg>((m) => m.clients.some((c) => c.client_id === id && c.name === "Renamed later"));
    expect(failing.left()).toBe(-1);
    await failing.restore();
    ws.close();
  });

  it("a shard that hangs holds up neither the top's snapshot nor its broadcasts, and what it holds is shown once it answers", async () => {
    const { id } = await createClient();
    await overviewShardStub(env, 3).rollup(rollupOf(id, 4));
    await vi.waitFor(async () => expect(await inside(top(), (o) => o.rollups.has(id))).toBe(true), { timeout: 4_000, interval: 20 });
    await inside(top(), (_o, state) => state.abort("restart")).catch(() => undefined);
    let asked = 0;
    const restore = await interceptShard(top(), 3, () => ({ held: () => (asked++, new Promise<never>(() => undefined)) }) as never);

    const ws = await viewer();
    expect(sentOf(await ws.next<Msg>(), id) ?? 0).toBe(0);
    const other = unique("client");
    await createClient({ id: other });
    await overviewShardStub(env, 2).rollup(rollupOf(other, 1));
    await ws.nextWhere<Msg>((m) => (sentOf(m, other) ?? 0) > 0);
    expect(asked).toBe(1);

    // Once the shard answers, its quiet client's row goes out without an event of its own.
    await restore();
    await inside(top(), (o) => o.gatherRetryAt.clear());
    await overviewShardStub(env, 2).rollup(rollupOf(other, 2));
    expect(sentOf(await ws.nextWhere<Msg>((m) => (sentOf(m, id) ?? 0) > 0), id)).toBe(4);
    ws.close();
  });

  it("a rename reaches the top's viewers at once through the client's shard", async () => {
    const { id, ws } = await watchedClient(idOffTheTop());
    const res = await withEnv({ OVERVIEW_SHARDS: "4" }, `/v1/admin/clients/${id}`, authed(await admin(), { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Renamed" }) }));
    expect(res.status).toBe(200);
    const row = (await ws.nextWhere<Msg>((m) => m.clients.some((c) => c.client_id === id && c.name === "Renamed"))).clients.find((c) => c.client_id === id);
    expect(row?.name).toBe("Renamed");
    ws.close();
  });

  it("the ingest Worker relays to the client's shard, which forwards to the top", async () => {
    const { id, ws } = await watchedClient(idOffTheTop());
    const res = await withEnv({ OVERVIEW_SHARDS: "4" }, "/v1/ingest/events", authed(await ingestKey(), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([status(id, `wamid.${unique("m")}`, "sent", Date.now())]) }));
    expect(res.status).toBe(200);
    expect(sentOf(await ws.nextWhere<Msg>((m) => (sentOf(m, id) ?? 0) > 0), id)).toBe(1);
    ws.close();
    // The client's shard saves its rollups; the top only holds them.
    const shard = overviewShardStub(env, overviewShard(id, 4));
    const savedByShard = await inside(shard, (o, state) => (o.checkpoint(), state.storage.sql.exec("SELECT 1 FROM rollups WHERE client_id = ?", id).toArray().length));
    expect(savedByShard).toBe(1);
    expect(await savedByTop()).not.toContain(id);
  });

  it("serves live sockets only on the top", async () => {
    const res = await overviewShardStub(env, 1).fetch("http://overview/", { headers: { upgrade: "websocket" } });
    expect(res.status).toBe(421);
  });
});
