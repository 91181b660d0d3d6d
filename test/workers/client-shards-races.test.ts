import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { transitionFrom, type Transition } from "../../durable-objects/reshard.ts";
import type { AdminClient } from "../../schema/api.ts";
import { writeClientChange } from "../../workers/client-changes.ts";
import { phoneNumberWrites } from "../../workers/client-records.ts";
import { forgetClients } from "../../workers/ingest/client-directory.ts";
import { status } from "./billing-fixtures.ts";
import { admin, authed, call, counters, createClient, d1DownFromFirstBatch, d1WithMarkedBatches, gatedDb, ingestKey, messageIn, postEvents, postJson, unique, withEnv, withMethods } from "./helpers.ts";

// Admin changes of a shard count that meet another admin's, or fail half-way: the objects and D1
// must end up serving one count, each message's statuses still meeting in one place.

const shardOf = (id: string, shard: number) => counterOf(env, id, shard) as DurableObjectStub<ClientCounter>;
const listed = async (id: string) =>
  ((await (await call("/v1/admin/clients", authed(await admin()))).json()) as { clients: AdminClient[] }).clients.find((c) => c.id === id)!;
const patch = async (id: string, body: object) => postJson(`/v1/admin/clients/${id}`, body, await admin(), "PATCH");

/** A client of one shard holding a delivered of a message that 3 shards route to shard 1 (it stays in shard 0 through a growth to 3). */
async function clientWithDelivered() {
  const { id } = await createClient();
  const delivered = status(id, messageIn(1, 3), "delivered", Date.parse("2026-11-20T12:00:00Z"));
  const key = await ingestKey();
  expect((await postEvents([delivered], key)).status).toBe(200);
  const send = async (events: unknown[]) => {
    const res = await postEvents(events, key);
    return [res.status, await res.json()];
  };
  return { id, delivered, send, key };
}

/** The objects of `id` as a Worker sees them, with `relayout` at the object named `name` replaced by `relayout(stub, …)`. */
function objectsWith(name: string, relayout: (stub: DurableObjectStub<ClientCounter>, shards: number, transition: Transition | null, change: string) => Promise<unknown>) {
  const target = env.CLIENT_COUNTER.idFromName(name).toString();
  return withMethods(env.CLIENT_COUNTER, {
    get: (objectId: DurableObjectId) => {
      const stub = env.CLIENT_COUNTER.get(objectId);
      if (objectId.toString() !== target) return stub;
      // An object of its own: a stub's methods cannot be bound through a Proxy (RPC would look for a remote `bind`).
      return {
        relayout: (shards: number, transition: Transition | null, change: string) => relayout(stub, shards, transition, change),
        restoreLayout: (change: string) => stub.restoreLayout(change),
      } as unknown as DurableObjectStub<ClientCounter>;
    },
  } as Partial<DurableObjectNamespace<ClientCounter>>);
}

/** D1 holds 3 and so do the objects: a redelivery is a duplicate and a message 3 shards keep in shard 0 is taken. */
async function expectServedByThree(id: string, delivered: unknown, send: (e: unknown[]) => Promise<unknown[]>) {
  expect(await listed(id)).toMatchObject({ shards: 3 });
  expect(await Promise.all([0, 1, 2].map((k) => shardOf(id, k).statedShards()))).toEqual([3, 3, 3]);
  forgetClients();
  const redelivery = await send([delivered]);
  const shard0 = (await send([status(id, messageIn(0, 3), "sent", Date.now())]))[0];
  expect({ redelivery, shard0 }).toEqual({ redelivery: [200, { accepted: 0, duplicates: 1, rejected: [] }], shard0: 200 });
}

describe("two admins growing a client with events to the same count at once", () => {
  /** Admin B's change 1 -> 3, its D1 write held until `release()`; `reached` once its objects agreed. */
  function adminB(id: string) {
    const b = gatedDb(/^update "clients"/i);
    return { start: () => writeClientChange(env, drizzle(b.DB), { id, shards: 1 }, { shards: 3 }, () => []), reached: b.reached, release: b.release };
  }

  it("keeps B's agreement at the objects when A's D1 write fails after B agreed, and B's change then commits", async () => {
    const { id, delivered, send } = await clientWithDelivered();
    const b = adminB(id);
    let bDone!: Promise<void>;
    // A's objects agree first; while its D1 write is on its way B's agree as they are, then A's
    // write fails without committing and A, reading D1 still at 1, puts its objects back.
    const failingAfterB = withMethods(env.DB, {
      batch: (async () => {
        bDone = b.start();
        await b.reached;
        throw new Error("D1_ERROR: Network connection lost.");
      }) as unknown as D1Database["batch"],
    });
    await expect(writeClientChange(env, drizzle(failingAfterB), { id, shards: 1 }, { shards: 3 }, () => [])).rejects.toThrow("Network connection lost");
    b.release();
    await bDone;
    await expectServedByThree(id, delivered, send);
  });

  it("keeps B's agreement when one of A's objects fails (a transient error) after B agreed", async () => {
    const { id, delivered, send } = await clientWithDelivered();
    const b = adminB(id);
    let bDone!: Promise<void>;
    const failingAtShard2 = objectsWith(`${id}#2`, async (stub, shards, transition, change) => {
      if (!transition) return stub.relayout(shards, transition, change);
      bDone = b.start();
      await b.reached;
      throw new Error("Network connection lost.");
    });
    await expect(writeClientChange({ ...env, CLIENT_COUNTER: failingAtShard2 }, drizzle(env.DB), { id, shards: 1 }, { shards: 3 }, () => [])).rejects.toThrow("Network connection lost");
    b.release();
    await bDone;
    await expectServedByThree(id, delivered, send);
  });

  it("puts the objects back when both changes fail", async () => {
    const { id, send } = await clientWithDelivered();
    const b = gatedDb(/^update "clients"/i);
    const bFails = withMethods(b.DB, { batch: (async () => Promise.reject(new Error("D1_ERROR: Network connection lost."))) as unknown as D1Database["batch"] });
    let bDone!: Promise<unknown>;
    const failingAfterB = withMethods(env.DB, {
      batch: (async () => {
        bDone = writeClientChange(env, drizzle(bFails), { id, shards: 1 }, { shards: 3 }, () => []).catch((e: unknown) => e);
        await bDone;
        throw new Error("D1_ERROR: Network connection lost.");
      }) as unknown as D1Database["batch"],
    });
    await expect(writeClientChange(env, drizzle(failingAfterB), { id, shards: 1 }, { shards: 3 }, () => [])).rejects.toThrow("Network connection lost");
    expect(await bDone).toMatchObject({ message: expect.stringContaining("Network connection lost") });
    expect(await Promise.all([0, 1, 2].map((k) => shardOf(id, k).statedShards()))).toEqual([null, null, null]);
    expect((await send([status(id, unique("wamid"), "sent", Date.now())]))[0]).toBe(200);
  });

  it("writes none of the loser's phone numbers when another change to the same count took D1 first", async () => {
    const { id, phones } = await createClient();
    const racing = withMethods(env.DB, {
      batch: (async (statements: D1PreparedStatement[]) => {
        expect((await patch(id, { shards: 2 })).status).toBe(200);
        return env.DB.batch(statements);
      }) as D1Database["batch"],
    });
    const db = drizzle(racing);
    await expect(writeClientChange(env, db, { id, shards: 1 }, { shards: 2, name: "A's name" }, phoneNumberWrites(db, id, [unique("pn")], Date.now()))).rejects.toMatchObject({
      status: 409,
      code: "concurrent_change",
    });
    expect(await listed(id)).toMatchObject({ name: `Client ${id}`, shards: 2, phone_number_ids: phones });
  });
});

describe("a PATCH that sends the count as it read it while another admin grows the client", () => {
  it("writes its other fields and leaves the grown count", async () => {
    const { id, key } = await clientWithDelivered();
    const t = Date.parse("2026-11-21T10:00:00Z");
    let raced = false;
    const racingDb = d1WithMarkedBatches(/^update "clients"/i, async <T,>(statements: D1PreparedStatement[]) => {
      if (!raced) {
        raced = true;
        expect((await patch(id, { shards: 3 })).status).toBe(200);
        forgetClients();
        expect((await postEvents(Array.from({ length: 12 }, () => status(id, unique("wamid"), "sent", t)), key)).status).toBe(200);
      }
      return env.DB.batch<T>(statements);
    });
    const init = { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Renamed by A", shards: 1 }) };
    expect((await withEnv({ DB: racingDb }, `/v1/admin/clients/${id}`, authed(await admin(), init))).status).toBe(200);
    forgetClients();
    expect(await listed(id)).toMatchObject({ name: "Renamed by A", shards: 3 });
    expect((await counters(id, "2026-11-21T10:00:00Z", "2026-11-21T10:01:00Z")).body.minutes[0]?.sent).toBe(12);
    expect((await postEvents([status(id, unique("wamid"), "sent", t)], key)).status).toBe(200);
  });
});

describe("a growth that never reached D1", () => {
  it("does not hold the client to its count: after a new shard's lost answer, another count goes through", async () => {
    const { id, key } = await clientWithDelivered();
    const lostAtShard2 = objectsWith(`${id}#2`, async (stub, shards, transition, change) => {
      const answer = await stub.relayout(shards, transition, change);
      if (transition) throw new Error("Network connection lost.");
      return answer;
    });
    const init = { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ shards: 3 }) };
    expect((await withEnv({ CLIENT_COUNTER: lostAtShard2 }, `/v1/admin/clients/${id}`, authed(await admin(), init))).status).toBe(503);
    expect((await postEvents([status(id, unique("wamid"), "sent", Date.now())], key)).status).toBe(200);
    const res = await patch(id, { shards: 4 });
    expect(res.status).toBe(200);
    expect(await Promise.all([0, 1, 2, 3].map((k) => shardOf(id, k).statedShards()))).toEqual([4, 4, 4, 4]);
  });

  it("does not hold the client to its count when its D1 write failed and D1 could not say its count", async () => {
    const { id, key } = await clientWithDelivered();
    const downFromWrite = d1DownFromFirstBatch();
    await expect(writeClientChange(env, drizzle(downFromWrite), { id, shards: 1 }, { shards: 3 }, () => [])).rejects.toThrow();
    expect((await postEvents([status(id, unique("wamid"), "sent", Date.now())], key)).status).toBe(503);
    expect((await patch(id, { shards: 2 })).status).toBe(200);
    forgetClients();
    expect((await postEvents([status(id, unique("wamid"), "sent", Date.now())], key)).status).toBe(200);
  });
});

describe("an object asked for the count it serves, with a transition it lacks", () => {
  it("takes the transition, and keeps it when the change that gave it the count without one is put back", async () => {
    const { id } = await createClient();
    const shard1 = shardOf(id, 1);
    // Admin B's first pass (no transition: this object holds no events) reaches shard 1; another
    // object holds events and refuses B, while admin A's pass with the transition reaches shard 1 before B's undo.
    expect(await shard1.relayout(3, null, "b")).toEqual({ ok: true });
    const transition = transitionFrom(1, Date.now());
    expect(await shard1.relayout(3, transition, "a")).toEqual({ ok: true });
    await shard1.restoreLayout("b");
    expect(await shard1.statedShards()).toBe(3);
    const kept = await runInDurableObject(shard1, (_i, state) => state.storage.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'reshard'").toArray());
    expect(kept.map((r) => JSON.parse(r.value))).toEqual([transition]);
  });

  it("drops the transition of a change that is put back, so the client can change again without one", async () => {
    const { id } = await createClient();
    const shard2 = shardOf(id, 2);
    expect(await shard2.relayout(3, transitionFrom(1, Date.now()), "grow")).toEqual({ ok: true });
    // Another object refused the growth, or D1 did not take it.
    await shard2.restoreLayout("grow");
    expect(await shard2.statedShards()).toBeNull();
    // The client, still of one shard, goes to two before it has events: nothing holds this object to the growth put back.
    expect(await shard2.relayout(2, null, "plain")).toEqual({ ok: true });
  });
});
