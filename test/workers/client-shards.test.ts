import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { SEQ_BAND, messageShard } from "../../durable-objects/client-shards.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import type { AdminClient, ClientSummary } from "../../schema/api.ts";
import type { ClientLiveMessage } from "../../schema/live.ts";
import { DAY_MS, localDate, minuteOf } from "../../schema/time.ts";
import { relayoutClient } from "../../workers/client-counters.ts";
import { writeClientChange } from "../../workers/client-changes.ts";
import { forgetClients, ownersByPhoneNumber } from "../../workers/ingest/client-directory.ts";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { clients, phoneNumbers } from "../../schema/db.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { transitionFrom, type Transition } from "../../durable-objects/reshard.ts";
import { compactPartition } from "../../workers/lake/compaction.ts";
import { listParts } from "../../workers/lake/layout.ts";
import { billingOf, ingest, rateCard, runDay, status } from "./billing-fixtures.ts";
import {
  admin,
  authed,
  call,
  counters,
  createClient,
  d1DownFromFirstBatch,
  d1RefusingBatchesOf,
  d1WithMarkedBatches,
  ingestKey,
  messageIn,
  postEvents,
  postJson,
  postWebhook,
  unique,
  withEnv,
  withMethods,
} from "./helpers.ts";
import { flush, parseCsv, report } from "./lake-fixtures.ts";
import { LiveSocket, clearOfMinuteTurn, event } from "./live-helpers.ts";

const at = (iso: string) => Date.parse(iso);
const shardOf = (id: string, shard: number) => counterOf(env, id, shard) as DurableObjectStub<ClientCounter>;
const everything = (stub: DurableObjectStub<ClientCounter>) => stub.totals(0, Number.MAX_SAFE_INTEGER);

/** Fresh message ids; a few dozen put some in every shard of a test's client (the split is a hash). */
function messages(count: number): string[] {
  return Array.from({ length: count }, () => unique("wamid"));
}

describe("a sharded client", () => {
  it("keeps all statuses of a message in one shard, so dedup and billing stay exact, and reads sum the shards", async () => {
    const { id } = await createClient({ shards: 4 });
    await rateCard({ client_id: id, category: "marketing", country: "BR", unit_price_micros: 50_000 });
    const t = at("2026-11-05T12:00:00Z");
    const ids = messages(40);
    await ingest(ids.flatMap((m) => [status(id, m, "sent", t), status(id, m, "delivered", t + 1_000)]));
    // Later statuses, and a replay of the delivered ones, in another request.
    await ingest(ids.flatMap((m) => [status(id, m, "read", t + 61_000), status(id, m, "delivered", t + 1_000)]));

    const perShard = await Promise.all([0, 1, 2, 3].map((k) => everything(shardOf(id, k))));
    expect(perShard.map((c) => c.sent)).toEqual([0, 1, 2, 3].map((k) => ids.filter((m) => messageShard(m, 4) === k).length));
    expect(perShard.filter((c) => c.sent > 0).length).toBe(4);
    for (const c of perShard) expect(c.read).toBe(c.sent);

    const { body } = await counters(id, "2026-11-05T12:00:00Z", "2026-11-05T12:05:00Z");
    expect(body.minutes).toEqual([
      { minute: t, accepted: 0, sent: 40, delivered: 40, read: 0, failed: 0 },
      { minute: t + 60_000, accepted: 0, sent: 0, delivered: 0, read: 40, failed: 0 },
    ]);

    // Each message billed once, on its delivered, though its read came too (in the same shard).
    await runDay("2026-11-05");
    expect((await billingOf("2026-11-05", id)).lines).toMatchObject([{ client_id: id, category: "marketing", country: "BR", billable_count: 40, amount_micros: 2_000_000 }]);
  });

  it("routes a message by the 32-bit FNV-1a of its id, which no deploy may change (its earlier statuses stay where they went)", async () => {
    const { id } = await createClient({ shards: 4 });
    const ids = [0, 1, 2, 3].map((k) => `wamid.pin-${k}`);
    await ingest(ids.map((m) => status(id, m, "sent", Date.now())));
    // FNV-1a("wamid.pin-k") % 4, computed outside this code: pin-0 → 1, pin-1 → 2, pin-2 → 3, pin-3 → 0.
    const held = await Promise.all([0, 1, 2, 3].map((k) => shardOf(id, k).knownMessages(ids)));
    expect(held).toEqual([["wamid.pin-3"], ["wamid.pin-0"], ["wamid.pin-1"], ["wamid.pin-2"]]);
  });

  it("lists today's totals (from the client's local midnight) summed over its shards, in the list and on its own", async () => {
    // A zone whose date is not UTC's now, and a read at an instant in exactly one of the two days; a
    // day turns only at a minute turn, which the test keeps clear of.
    await clearOfMinuteTurn();
    const now = Date.now();
    const utcMidnight = Math.floor(now / DAY_MS) * DAY_MS;
    const [zone, other] = new Date(now).getUTCHours() < 12 ? ["Etc/GMT+12", utcMidnight - 11 * 3_600_000] : ["Pacific/Kiritimati", utcMidnight + 9 * 3_600_000];
    const { id } = await createClient({ shards: 3, timezone: zone });
    await ingest([...messages(12).map((m) => status(id, m, "sent", now)), status(id, unique("wamid"), "read", other)]);
    const res = await call("/v1/clients", authed(await admin()));
    const listed = ((await res.json()) as { clients: ClientSummary[] }).clients.find((c) => c.id === id);
    expect([listed?.today.sent, listed?.today.read]).toEqual([12, localDate(other, zone) === localDate(now, zone) ? 1 : 0]);
    const one = await call(`/v1/clients/${id}`, authed(await admin()));
    expect(await one.json()).toEqual(listed);
    const unknown = await call("/v1/clients/no-such-client", authed(await admin()));
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "client_not_found" } });
  });

  it("writes each shard's rows to the lake in its own seq band, and a report reads them all", async () => {
    const { id } = await createClient({ shards: 2 });
    const t = at("2026-11-06T08:00:00Z");
    const ids = messages(20);
    await ingest(ids.map((m) => status(id, m, "sent", t)));
    const res = await flush(id);
    expect(res.status).toBe(200);
    const parts = await listParts(env.LAKE, id, "2026-11-06");
    expect(new Set(parts.map((p) => Math.floor(p.first / SEQ_BAND)))).toEqual(new Set([0, 1]));
    for (const p of parts) expect(Math.floor(p.last / SEQ_BAND)).toBe(Math.floor(p.first / SEQ_BAND));

    const csv = await report(id, { from: "2026-11-06T00:00:00Z", to: "2026-11-07T00:00:00Z", format: "csv" });
    expect(csv.status).toBe(200);
    const rows = parseCsv(await csv.text()).slice(1);
    expect(rows.length).toBe(20);
  });

  it("compacts a closed day into one file per shard, so no file covers another shard's later ones", async () => {
    const { id } = await createClient({ shards: 2 });
    const t = at("2026-11-07T08:00:00Z");
    for (let round = 0; round < 2; round++) {
      await ingest(messages(30).map((m) => status(id, m, "sent", t)));
      expect((await flush(id)).status).toBe(200);
    }
    const before = await listParts(env.LAKE, id, "2026-11-07");
    expect(before.length).toBe(4);
    const compacted = await compactPartition(env.LAKE, id, "2026-11-07");
    expect(compacted.map((c) => Math.floor(Number(/part-(\d+)-/.exec(c.key)![1]) / SEQ_BAND)).sort()).toEqual([0, 1]);
    // A late event in shard 0 after compaction: its file's seqs lie below shard 1's band.
    const late = messages(30).find((m) => messageShard(m, 2) === 0)!;
    await ingest([status(id, late, "sent", t)]);
    expect((await flush(id)).status).toBe(200);
    const csv = await report(id, { from: "2026-11-07T00:00:00Z", to: "2026-11-08T00:00:00Z", format: "csv" });
    expect(parseCsv(await csv.text()).slice(1).length).toBe(61);
  });

  it("shows one live view summed over its shards, updated when any shard changes", async () => {
    const { id } = await createClient({ shards: 2 });
    const now = Date.now();
    const ids = messages(16);
    // A read the minute before (on whichever day that is): a minute whose sum does not change below.
    const earlier = minuteOf(now) - 60_000;
    await ingest([...ids.map((m) => status(id, m, "sent", now)), status(id, unique("wamid"), "read", earlier)]);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${await admin()}` });
    const snap = await ws.next<ClientLiveMessage>();
    expect(snap).toMatchObject({ type: "snapshot", client_id: id, today: { sent: 16 } });
    expect(snap.minutes).toEqual([
      { minute: earlier, accepted: 0, sent: 0, delivered: 0, read: 1, failed: 0 },
      { minute: minuteOf(now), accepted: 0, sent: 16, delivered: 0, read: 0, failed: 0 },
    ]);

    const inShard1 = ids.find((m) => messageShard(m, 2) === 1)!;
    await ingest([status(id, inShard1, "delivered", now + 1)]);
    const update = await ws.nextWhere<ClientLiveMessage>((m) => m.today.delivered === 1);
    // Only the minute whose sum changed.
    expect(update.minutes).toEqual([{ minute: minuteOf(now), accepted: 0, sent: 16, delivered: 1, read: 0, failed: 0 }]);
    ws.close();
  });
});

describe("changing a client's shard count", () => {
  const patchShards = async (id: string, shards: number) => {
    const res = await postJson(`/v1/admin/clients/${id}`, { shards }, await admin(), "PATCH");
    return { status: res.status, body: (await res.json()) as { shards?: number; error?: { code: string } } };
  };
  const listed = async (id: string) =>
    ((await (await call("/v1/admin/clients", authed(await admin()))).json()) as { clients: AdminClient[] }).clients.find((c) => c.id === id)!;
  const listedShards = async (id: string) => (await listed(id)).shards;

  it("grows a client with events: statuses of messages begun before the change still meet their earlier ones", async () => {
    const { id } = await createClient();
    await rateCard({ client_id: id, category: "marketing", country: "BR", unit_price_micros: 10_000 });
    const t = at("2026-11-08T10:00:00Z");
    const before = messages(30);
    await ingest(before.flatMap((m) => [status(id, m, "sent", t), status(id, m, "delivered", t + 1_000)]));

    expect(await patchShards(id, 3)).toMatchObject({ status: 200, body: { shards: 3 } });
    const after = messages(30);
    const res = await postEvents(
      [...before.flatMap((m) => [status(id, m, "read", t + 2_000), status(id, m, "delivered", t + 1_000)]), ...after.flatMap((m) => [status(id, m, "sent", t), status(id, m, "read", t + 2_000)])],
      await ingestKey(),
    );
    expect(await res.json()).toEqual({ accepted: 90, duplicates: 30, rejected: [] });

    // Messages begun before the change stayed in shard 0; the new ones spread over all three.
    const perShard = await Promise.all([0, 1, 2].map((k) => everything(shardOf(id, k))));
    expect(perShard[0]!.read).toBe(30 + after.filter((m) => messageShard(m, 3) === 0).length);
    expect(perShard.map((c) => c.sent)).toEqual([0, 1, 2].map((k) => (k === 0 ? 30 : 0) + after.filter((m) => messageShard(m, 3) === k).length));
    const { body } = await counters(id, "2026-11-08T10:00:00Z", "2026-11-08T10:01:00Z");
    expect(body.minutes).toEqual([{ minute: t, accepted: 0, sent: 60, delivered: 30, read: 60, failed: 0 }]);

    // Each message billed once: the old ones on their delivered, the new ones on their read.
    await runDay("2026-11-08");
    expect((await billingOf("2026-11-08", id)).lines).toMatchObject([{ client_id: id, billable_count: 60 }]);
    const lake = await flush(id);
    expect(lake.status).toBe(200);
    const csv = await report(id, { from: "2026-11-08T00:00:00Z", to: "2026-11-09T00:00:00Z", format: "csv" });
    expect(parseCsv(await csv.text()).slice(1).length).toBe(150);
  });

  it("refuses to shrink a client with events, or to change it again during a transition, and changes nothing", async () => {
    const { id } = await createClient({ shards: 2 });
    await ingest(messages(8).map((m) => status(id, m, "sent", Date.now())));
    expect(await patchShards(id, 1)).toMatchObject({ status: 409, body: { error: { code: "shards_fixed" } } });
    expect(await listedShards(id)).toBe(2);
    expect((await patchShards(id, 4)).status).toBe(200);
    expect(await patchShards(id, 6)).toMatchObject({ status: 409, body: { error: { code: "reshard_in_progress" } } });
    expect(await listedShards(id)).toBe(4);
    // A form sent whole, its count unchanged, is no change of the count: the rest goes through.
    const renamed = await postJson(`/v1/admin/clients/${id}`, { name: "Renamed", shards: 4 }, await admin(), "PATCH");
    expect([renamed.status, await renamed.json()]).toEqual([200, expect.objectContaining({ name: "Renamed", shards: 4 })]);
    await ingest(messages(8).map((m) => status(id, m, "sent", Date.now())));
    const sent = await Promise.all([0, 1, 2, 3, 4, 5].map(async (k) => (await everything(shardOf(id, k))).sent));
    expect(sent.slice(4)).toEqual([0, 0]);
    expect(sent.reduce((a, b) => a + b, 0)).toBe(16);
  });

  it("is taken before the first event without a transition, and then a call routed by the old count is refused", async () => {
    const { id } = await createClient();
    const res = await patchShards(id, 3);
    expect(res).toMatchObject({ status: 200, body: { shards: 3 } });
    // As an isolate would that cached the client before the change.
    await runInDurableObject(shardOf(id, 0), (instance: ClientCounter) =>
      expect(instance.ingest({ id, timezone: "UTC", shards: 1 }, encodeBatch([event(id, "sent")]))).rejects.toThrow(/shard layout/),
    );
    await ingest(messages(9).map((m) => status(id, m, "sent", Date.now())));
    const sent = await Promise.all([0, 1, 2].map(async (k) => (await everything(shardOf(id, k))).sent));
    expect(sent.reduce((a, b) => a + b, 0)).toBe(9);
    // With events now, it can grow but not shrink.
    expect((await patchShards(id, 1)).status).toBe(409);
  });

  it("stores a change to one shard, so a call routed by the old count is refused there too", async () => {
    const { id } = await createClient({ shards: 4 });
    expect(await patchShards(id, 1)).toMatchObject({ status: 200, body: { shards: 1 } });
    for (const shard of [0, 2]) {
      await runInDurableObject(shardOf(id, shard), (instance: ClientCounter) =>
        expect(instance.ingest({ id, timezone: "UTC", shards: 4, shard }, encodeBatch([event(id, "sent")]))).rejects.toThrow(/shard layout/),
      );
    }
    await ingest(messages(3).map((m) => status(id, m, "sent", Date.now())));
    expect((await everything(shardOf(id, 0))).sent).toBe(3);
  });

  it("never commits calls routed by two counts together at an object that has not stated its count", async () => {
    const id = unique("client");
    const results = await runInDurableObject(shardOf(id, 0), (instance: ClientCounter) =>
      Promise.allSettled([
        instance.ingest({ id, timezone: "UTC", shards: 1 }, encodeBatch([event(id, "sent")])),
        instance.ingest({ id, timezone: "UTC", shards: 4, shard: 0 }, encodeBatch([event(id, "sent")])),
      ]),
    );
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
  });

  it("puts every object back when D1 does not take the change", async () => {
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "sent", Date.now())]);
    const change = await relayoutClient(env, { id, shards: 1 }, 3);
    expect(change.refused).toBeNull();
    // The objects now refuse calls routed by one shard...
    await runInDurableObject(shardOf(id, 0), (instance: ClientCounter) =>
      expect(instance.ingest({ id, timezone: "UTC", shards: 1 }, encodeBatch([event(id, "sent")]))).rejects.toThrow(/shard layout/),
    );
    // ...until the change is undone, as the admin route does when its D1 update fails.
    await change.undo();
    await ingest([status(id, unique("wamid"), "sent", Date.now())]);
    expect((await everything(shardOf(id, 0))).sent).toBe(2);
    expect(await runInDurableObject(shardOf(id, 1), (instance: ClientCounter) => instance.statedShards())).toBeNull();
  });

  it("writes D1 only from the count it was read at, and puts the objects back when D1 does not take it (a change meanwhile, or an error)", async () => {
    const { id } = await createClient();
    expect((await patchShards(id, 2)).status).toBe(200);
    // Another admin's request read the client before that change.
    await expect(writeClientChange(env, drizzle(env.DB), { id, shards: 1 }, { shards: 3 }, () => [])).rejects.toMatchObject({ status: 409, code: "concurrent_change" });
    expect(await listedShards(id)).toBe(2);

    const other = await createClient();
    const failingWrites = withMethods(env.DB, { batch: () => Promise.reject(new Error("D1 is down")) });
    await expect(writeClientChange(env, drizzle(failingWrites), { id: other.id, shards: 1 }, { shards: 3 }, () => [])).rejects.toThrow("D1 is down");
    expect(await listedShards(other.id)).toBe(1);

    // Both clients' objects serve the count D1 kept: events routed by it are taken.
    for (const [client, shards] of [[id, 2], [other.id, 1]] as const) {
      await ingest(messages(9).map((m) => status(client, m, "sent", Date.now())));
      const sent = await Promise.all([0, 1, 2].map(async (k) => (await everything(shardOf(client, k))).sent));
      expect(sent.reduce((x, y) => x + y, 0)).toBe(9);
      expect(sent.slice(shards)).toEqual(shards === 2 ? [0] : [0, 0]);
    }
  });

  it("a change that loses D1 to another admin's, made while its own was on its way, leaves the winner's count at the objects", async () => {
    for (const winner of [3, 2]) {
      const { id } = await createClient();
      // Admin A read the client at one shard and asks for 2; its objects agree, and while its D1 write
      // is on its way admin B's change from one shard to `winner` goes through whole.
      const racing = withMethods(env.DB, {
        batch: (async (statements: D1PreparedStatement[]) => {
          expect((await patchShards(id, winner)).status).toBe(200);
          return env.DB.batch(statements);
        }) as D1Database["batch"],
      });
      await expect(writeClientChange(env, drizzle(racing), { id, shards: 1 }, { shards: 2 }, () => [])).rejects.toMatchObject({ status: 409, code: "concurrent_change" });
      expect(await listedShards(id)).toBe(winner);
      const stated = await Promise.all(Array.from({ length: winner }, (_, k) => shardOf(id, k).statedShards()));
      expect(stated).toEqual(Array(winner).fill(winner));
      // Routed by the count D1 has, every status is taken, once.
      await ingest(messages(12).map((m) => status(id, m, "sent", Date.now())));
      const sent = await Promise.all(Array.from({ length: winner }, async (_, k) => (await everything(shardOf(id, k))).sent));
      expect(sent.reduce((x, y) => x + y, 0)).toBe(12);
    }
  });

  it("writes all of a PATCH that changes the count or none of it: its other fields and phone numbers go with the count", async () => {
    const token = await admin();
    const fields = async (id: string) => {
      const c = await listed(id);
      return [c.name, c.shards, c.phone_number_ids];
    };
    // D1 refuses the batch that writes the client's row (sessions and reads go through).
    const d1DownForClientWrites = d1RefusingBatchesOf(/^update "clients"/i);
    const { id, phones } = await createClient();
    const body = JSON.stringify({ name: "Never written", shards: 2, phone_number_ids: [unique("pn")] });
    const failed = await withEnv({ DB: d1DownForClientWrites }, `/v1/admin/clients/${id}`, authed(token, { method: "PATCH", headers: { "content-type": "application/json" }, body }));
    expect(failed.status).toBe(503);
    expect(await fields(id)).toEqual([`Client ${id}`, 1, phones]);
    // The objects were put back: calls routed by one shard are taken.
    await ingest([status(id, unique("wamid"), "sent", Date.now())]);

    // Another request changed the count first: this one's phone numbers are not written either.
    const other = await createClient();
    expect((await patchShards(other.id, 2)).status).toBe(200);
    const db = drizzle(env.DB);
    const late = unique("pn");
    const write = writeClientChange(env, db, { id: other.id, shards: 1 }, { shards: 3, name: "Late" }, (row) => [
      db.insert(phoneNumbers).select(db.select({ phoneNumberId: sql<string>`${late}`.as("phone_number_id"), clientId: clients.id }).from(clients).where(row)),
    ]);
    await expect(write).rejects.toMatchObject({ status: 409, code: "concurrent_change" });
    expect(await fields(other.id)).toEqual([`Client ${other.id}`, 2, other.phones]);
  });

  it("refuses the statuses a webhook routed by a stale cached count, though it routed others of the client to the same shard by the new one, so Meta's retry stores them in the shard of the new count", async () => {
    const { id, phones } = await createClient({ phones: [unique("pn"), unique("pn")] });
    const [stale, fresh] = phones as [string, string];
    const db = drizzle(env.DB);
    // This isolate cached one phone number while the client had one shard; another isolate's admin then grew it to 3.
    forgetClients();
    await ownersByPhoneNumber(db, [stale]);
    await writeClientChange(env, db, { id, shards: 1 }, { shards: 3 }, () => []);
    const timestamp = Math.floor(at("2026-11-20T12:30:00Z") / 1000);
    // Shard 0 by either count; shard 0 by the stale count, 2 by D1's.
    const [unmoved, moved] = [messageIn(0, 3), messageIn(2, 3)];
    const body = webhook([
      { phoneNumberId: fresh, statuses: [statusObject({ id: unmoved, status: "sent", timestamp, category: "marketing" })] },
      { phoneNumberId: stale, statuses: [statusObject({ id: moved, status: "delivered", timestamp, category: "marketing" })] },
    ]);
    expect((await postWebhook(body)).status).toBe(503);
    // The refusal dropped this isolate's cache: the retry is routed by D1's count.
    const retried = await postWebhook(body);
    expect([retried.status, await retried.json()]).toEqual([200, { accepted: 1, duplicates: 1, ignored: 0 }]);
    const perShard = await Promise.all([0, 1, 2].map((k) => everything(shardOf(id, k))));
    expect(perShard.map((c) => [c.sent, c.delivered])).toEqual([[1, 0], [0, 0], [0, 1]]);
  });

  /** A PATCH of the shard count through the Worker with some of its bindings replaced; its status. */
  const patchShardsWith = async (bindings: Partial<Env>, id: string, shards: number) => {
    const init = { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ shards }) };
    return (await withEnv(bindings, `/v1/admin/clients/${id}`, authed(await admin(), init))).status;
  };
  /**
   * A client of one shard holding a delivered of a message that 3 shards keep in shard 1 (it stays
   * in shard 0 through a growth to 3), and Meta's redelivery of it: status and body.
   */
  const clientWithDelivered = async () => {
    const { id } = await createClient();
    const delivered = status(id, messageIn(1, 3), "delivered", at("2026-11-20T12:00:00Z"));
    await ingest([delivered]);
    const redeliver = async () => {
      const res = await postEvents([delivered], await ingestKey());
      return [res.status, await res.json()];
    };
    return { id, redeliver };
  };
  const countedOnce = [200, { accepted: 0, duplicates: 1, rejected: [] }];

  it("leaves the objects grown when D1 commits the change but its answer is lost: a status is counted once, and the admin's retry goes through", async () => {
    const { id, redeliver } = await clientWithDelivered();
    const answerLost = d1WithMarkedBatches(/^update "clients"/i, async (statements) => {
      await env.DB.batch(statements);
      throw new Error("D1_ERROR: Network connection lost.");
    });
    expect(await patchShardsWith({ DB: answerLost }, id, 3)).toBe(503);
    expect(await listedShards(id)).toBe(3);
    // The isolate's cache expires: the redelivery is routed by D1's count.
    forgetClients();
    expect(await redeliver()).toEqual(countedOnce);
    expect(await patchShards(id, 3)).toMatchObject({ status: 200, body: { shards: 3 } });
  });

  it("leaves the objects grown when a change's D1 write fails and D1 cannot then say its count: the client's calls are refused, never counted twice, until the admin's retry goes through", async () => {
    const { id, redeliver } = await clientWithDelivered();
    const downFromWrite = d1DownFromFirstBatch();
    await expect(writeClientChange(env, drizzle(downFromWrite), { id, shards: 1 }, { shards: 3 }, () => [])).rejects.toThrow("Network connection lost");
    expect(await listedShards(id)).toBe(1);
    expect((await redeliver())[0]).toBe(503);
    expect(await patchShards(id, 3)).toMatchObject({ status: 200, body: { shards: 3 } });
    expect(await redeliver()).toEqual(countedOnce);
  });

  it("grows every shard with the transition on the admin's retry after the object holding events applied the change but its answer was lost", async () => {
    const { id, redeliver } = await clientWithDelivered();
    // Shard 0 applies the growth with its transition and its answer is lost: the Worker puts the other shards back.
    const shard0 = env.CLIENT_COUNTER.idFromName(id).toString();
    const answerLostAtShard0 = withMethods(env.CLIENT_COUNTER, {
      get: (objectId: DurableObjectId) => {
        const stub = env.CLIENT_COUNTER.get(objectId);
        if (objectId.toString() !== shard0) return stub;
        const relayout = async (shards: number, transition: Transition | null, change: string) => {
          const answer = await stub.relayout(shards, transition, change);
          if (transition) throw new Error("Network connection lost.");
          return answer;
        };
        return withMethods(stub, { relayout: relayout as DurableObjectStub<ClientCounter>["relayout"] });
      },
    } as Partial<DurableObjectNamespace<ClientCounter>>);
    expect(await patchShardsWith({ CLIENT_COUNTER: answerLostAtShard0 }, id, 3)).toBe(503);
    expect(await patchShards(id, 3)).toMatchObject({ status: 200, body: { shards: 3 } });
    expect(await redeliver()).toEqual(countedOnce);
  });

  it("shows viewers the count the objects serve, even before D1 has it", async () => {
    const { id } = await createClient();
    await relayoutClient(env, { id, shards: 1 }, 2);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${await admin()}` });
    expect(await ws.next<ClientLiveMessage>()).toMatchObject({ type: "snapshot", today: { sent: 0 } });
    const inShard1 = messages(40).find((m) => messageShard(m, 2) === 1)!;
    await shardOf(id, 1).ingest({ id, timezone: "UTC", shards: 2, shard: 1 }, encodeBatch([{ ...event(id, "sent"), message_id: inShard1, event_id: `${inShard1}:sent` }]));
    expect(await ws.nextWhere<ClientLiveMessage>((m) => m.today.sent === 1)).toMatchObject({ type: "update", client_id: id });
    ws.close();
  });

  it("lasts until statuses forwarded during it have expired too", () => {
    // A change in November: its month's tables expire on 1 February, the ones forwarded to until then on 1 May.
    expect(transitionFrom(1, Date.UTC(2026, 10, 15, 9))).toEqual({ previous: 1, until: Date.UTC(2027, 4, 1) });
    expect(transitionFrom(2, Date.UTC(2026, 11, 31, 23, 59))).toEqual({ previous: 2, until: Date.UTC(2027, 5, 1) });
  });

  it("accepts 1 to 64 shards", async () => {
    for (const shards of [0, 65, 1.5]) {
      const res = await postJson("/v1/admin/clients", { id: unique("client"), name: "x", shards }, await admin());
      expect(res.status).toBe(400);
    }
  });
});
