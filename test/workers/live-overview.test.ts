import fc from "fast-check";
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { emptyCounts, messageShard } from "../../durable-objects/client-shards.ts";
import { MAX_SOCKETS_PER_SESSION, REVOCATION_CHECK_MS, SESSION_ENDED } from "../../durable-objects/live-sockets.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import type { Overview } from "../../durable-objects/overview.ts";
import { overviewShard, overviewShards } from "../../durable-objects/overview-shards.ts";
import { mergeRollup, type ClientRollup } from "../../durable-objects/rollups.ts";
import type { MinuteCounts } from "../../schema/api.ts";
import { STATUSES } from "../../schema/event.ts";
import { hourStart, type OverviewLiveMessage, type OverviewRow } from "../../schema/live.ts";
import { DAY_MS, localDate, minuteOf } from "../../schema/time.ts";
import { RELAY_INTERVAL_MS, relayRollups } from "../../workers/ingest/rollup-relay.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { admin, authed, call, createClient, postJson, signIn, unique, withClockAhead, withMethods } from "./helpers.ts";
import { LiveSocket, clearOfMinuteTurn, event, ingestNow } from "./live-helpers.ts";

type Msg = OverviewLiveMessage;
/** How long a rollup may take to reach the Overview: a wait fails with its expectation, not as a test timeout. */
const HELD_WAIT = { timeout: 4_000, interval: 20 };
const bearer = async (token?: string) => ({ authorization: `Bearer ${token ?? (await admin())}` });
const overview = () => env.OVERVIEW.get(env.OVERVIEW.idFromName("overview-0")) as DurableObjectStub<Overview>;
const rowOf = (m: Msg, id: string): OverviewRow | undefined => m.clients.find((c) => c.client_id === id);
/** Ends an object's instance at once, with whatever it held in memory, as a deploy or a crash does. */
async function restart(stub: DurableObjectStub): Promise<void> {
  await runInDurableObject(stub, (_i, state) => state.abort("restart")).catch(() => undefined);
}
/** The minutes the Overview holds of a client, as [minute, sent, read]. */
const minutesHeld = (id: string) =>
  runInDurableObject(overview(), (instance: Overview) =>
    (instance as unknown as { rollups: Map<string, Map<number, { minutes: MinuteCounts[] }>> }).rollups.get(id)?.get(0)?.minutes.map((m) => [m.minute, m.sent, m.read]),
  );
/** Runs the Overview's checkpoint now instead of waiting for its timer. */
const checkpoint = (instance: Overview) => (instance as unknown as { checkpoint(): void }).checkpoint();
const counter = (id: string) => env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(id)) as DurableObjectStub<ClientCounter>;
/** The Overview's `today` of a client (of one of its shards), undefined when it holds no rollup of it. */
const held = (id: string, shard = 0) =>
  runInDurableObject(overview(), (instance: Overview) => (instance as unknown as { rollups: Map<string, Map<number, { today: Record<string, number> }>> }).rollups.get(id)?.get(shard)?.today);

/** A client's rollup of `sent` messages in the minute of `now` (UTC day), stamped `at`. */
const sentRollup = (clientId: string, sent: number, now: number, at = now): ClientRollup => ({
  client_id: clientId, day: localDate(now, "UTC"), today: { ...emptyCounts(), sent }, minutes: [{ minute: minuteOf(now), ...emptyCounts(), sent }], at,
});

describe("overview live socket", () => {
  it("lists every visible client in the snapshot, then updates a client's row after ingest", async () => {
    const { id, phones } = await createClient();
    await clearOfMinuteTurn();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    const snap = await ws.next<Msg>();
    expect(snap.type).toBe("snapshot");
    expect(rowOf(snap, id)).toMatchObject({ name: `Client ${id}`, today: { sent: 0 }, hour: { sent: 0 } });

    await ingestNow(phones[0]!, ["sent", "delivered"]);
    // A fresh Overview may first send the row it primed from the client's object (nothing yet): the
    // update that counts the call carries both of its statuses.
    const update = await ws.nextWhere<Msg>((m) => (rowOf(m, id)?.today.sent ?? 0) > 0);
    expect(update.type).toBe("update");
    const row = rowOf(update, id)!;
    expect(row.minute).toMatchObject({ sent: 1, delivered: 1 });
    expect(row.hour).toMatchObject({ sent: 1, delivered: 1 });
    expect(row.today).toMatchObject({ sent: 1, delivered: 1 });
    expect(row.spark).toHaveLength(60);
    expect(row.spark!.at(-1)).toBe(2);
    ws.close();
  });

  it("shows a client's new name and its today in a new time zone at once, without waiting for its next event", async () => {
    const { id, phones } = await createClient({ timezone: "UTC" });
    await clearOfMinuteTurn();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    await ingestNow(phones[0]!, ["sent"]);
    await ws.nextWhere<Msg>((m) => rowOf(m, id)?.today.sent === 1);
    // A zone whose date is not UTC's now: the rollup the Overview holds was counted on another date.
    const zone = new Date().getUTCHours() < 12 ? "Etc/GMT+12" : "Pacific/Kiritimati";
    const res = await call(`/v1/admin/clients/${id}`, authed(await admin(), { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "Renamed", timezone: zone }) }));
    expect(res.status).toBe(200);
    const row = rowOf(await ws.nextWhere<Msg>((m) => rowOf(m, id) !== undefined), id)!;
    expect([row.name, row.today.sent]).toEqual(["Renamed", 1]);
    ws.close();
  });

  it("shows a client resumed after a suspension to a viewer that connected while it was suspended", async () => {
    // The row must not move with the minute while the story runs.
    await clearOfMinuteTurn(15_000);
    const { id, phones } = await createClient();
    const early = await LiveSocket.connect("/v1/live", await bearer());
    await early.next<Msg>();
    await ingestNow(phones[0]!, ["sent"]);
    await early.nextWhere<Msg>((m) => rowOf(m, id)?.today.sent === 1);
    const setActive = async (active: boolean) => expect((await postJson(`/v1/admin/clients/${id}`, { active }, await admin(), "PATCH")).status).toBe(200);
    await setActive(false);
    // A dashboard opened (or reconnected after a 4401) while the client was inactive: no row of it.
    const late = await LiveSocket.connect("/v1/live", await bearer());
    expect(rowOf(await late.next<Msg>(), id)).toBeUndefined();
    await setActive(true);
    // Before, the resumed client's row matched the last one sent before the suspension, and went to nobody.
    await vi.waitFor(() => expect(late.seen.some((m) => rowOf(m as Msg, id)?.today.sent === 1)).toBe(true), HELD_WAIT);
    early.close();
    late.close();
  });

  it("takes a suspended client off the screen of a viewer watching it, with a fresh snapshot", async () => {
    const { id, phones } = await createClient();
    const other = await createClient();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    await ingestNow(phones[0]!, ["sent"]);
    await ws.nextWhere<Msg>((m) => rowOf(m, id)?.today.sent === 1);
    expect((await postJson(`/v1/admin/clients/${id}`, { active: false }, await admin(), "PATCH")).status).toBe(200);
    // Updates only add or replace rows: the row stayed, frozen, until the viewer reconnected.
    const snapshot = await ws.nextWhere<Msg>((m) => m.type === "snapshot");
    expect(rowOf(snapshot, id)).toBeUndefined();
    expect(rowOf(snapshot, other.id)).toBeDefined();
    ws.close();
  });

  it("takes a client suspended while the overview hibernated off the screen of a viewer watching it", async () => {
    const { id, phones } = await createClient();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    await ingestNow(phones[0]!, ["sent"]);
    await ws.nextWhere<Msg>((m) => rowOf(m, id)?.today.sent === 1);
    // Hibernated (memory gone, the socket kept): the next update knows neither the list nor what was sent.
    await evictDurableObject(overview());
    const seen = ws.seen.length;
    expect((await postJson(`/v1/admin/clients/${id}`, { active: false }, await admin(), "PATCH")).status).toBe(200);
    // Before, the update took the client for one never listed and dropped it: its row stayed until a reconnect.
    const snapshot = () => ws.seen.slice(seen).find((m) => (m as Msg).type === "snapshot") as Msg | undefined;
    await vi.waitFor(() => expect(snapshot()).toBeDefined(), HELD_WAIT);
    expect(rowOf(snapshot()!, id)).toBeUndefined();
    ws.close();
  });

  it("lists a client created and heard from while nobody watched, in a snapshot moments after the list was read", async () => {
    const first = await LiveSocket.connect("/v1/live", await bearer());
    expect((await first.next<Msg>()).type).toBe("snapshot");
    first.close();
    // Within the snapshot's list age (2 s) of that read: a client that did not exist then, with events.
    const { id, phones } = await createClient();
    await ingestNow(phones[0]!, ["sent"]);
    await vi.waitFor(async () => expect((await held(id))?.sent).toBe(1), HELD_WAIT);
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    const snap = await ws.next<Msg>();
    expect(rowOf(snap, id)).toMatchObject({ name: `Client ${id}`, today: { sent: 1 } });
    ws.close();
  });

  it("shows a watching viewer a client created just after the list was read, once the list is read again", async () => {
    // The connect reads the list afresh (it is older than a snapshot may use); the client comes after.
    await runInDurableObject(overview(), (instance: Overview) => void ((instance as unknown as { directoryAt: number }).directoryAt = 0));
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    const { id } = await createClient();
    const now = Date.now();
    // Stamped a minute ahead: the fresh Overview's priming rollups (nothing yet, stamped now) are older.
    await overview().rollup(sentRollup(id, 2, now, now + 60_000));
    const update = await ws.nextWhere<Msg>((m) => rowOf(m, id) !== undefined);
    expect(rowOf(update, id)).toMatchObject({ name: `Client ${id}`, today: { sent: 2 } });
    ws.close();
  });

  it("shows a viewer only its clients, in the snapshot and in updates, and finance every client", async () => {
    const a = await createClient();
    const b = await createClient();
    const viewer = await signIn("viewer", [a.id]);
    const ws = await LiveSocket.connect("/v1/live", await bearer(viewer));
    const snap = await ws.next<Msg>();
    expect(snap.clients.map((c) => c.client_id)).toEqual([a.id]);
    // The viewer's connect read the client list afresh (its client was new to the Overview): b is in it.
    const finance = await LiveSocket.connect("/v1/live", await bearer(await signIn("finance")));
    expect((await finance.next<Msg>()).clients.map((c) => c.client_id)).toEqual(expect.arrayContaining([a.id, b.id]));
    finance.close();

    await ingestNow(b.phones[0]!, ["sent"]);
    await ingestNow(a.phones[0]!, ["sent"]);
    await ws.nextWhere<Msg>((m) => rowOf(m, a.id)?.today.sent === 1);
    expect(ws.seen.flatMap((m) => (m as Msg).clients.map((c) => c.client_id))).not.toContain(b.id);
    ws.close();
  });

  it("forgets at its minute tick the scopes of sockets that ended without a close (a deploy drops them unannounced)", async () => {
    const a = await createClient();
    const ws = await LiveSocket.connect("/v1/live", await bearer(await signIn("viewer", [a.id])));
    await ws.next<Msg>();
    const dropped = unique("dropped-sid");
    const sids = () => runInDurableObject(overview(), (_o: Overview, state) => state.storage.sql.exec<{ sid: string }>("SELECT sid FROM viewers").toArray().map((r) => r.sid));
    const open = await sids();
    await runInDurableObject(overview(), (_o: Overview, state) => void state.storage.sql.exec("INSERT INTO viewers (sid, clients) VALUES (?, ?)", dropped, JSON.stringify([a.id])));
    expect(await runDurableObjectAlarm(overview())).toBe(true);
    const kept = await sids();
    expect(kept).not.toContain(dropped);
    expect(kept).toEqual(open);
    // The open socket's scope still holds: it gets its client's rows.
    await ingestNow(a.phones[0]!, ["sent"]);
    await ws.nextWhere<Msg>((m) => rowOf(m, a.id)?.today.sent === 1);
    ws.close();
  });

  it("forgets at its minute tick the scopes of sockets that ended without a close when no socket is left open", async () => {
    const a = await createClient();
    const dropped = unique("dropped-sid");
    const sids = () => runInDurableObject(overview(), (_o: Overview, state) => state.storage.sql.exec<{ sid: string }>("SELECT sid FROM viewers").toArray().map((r) => r.sid));
    // The deploy dropped every viewer: no socket is open, and the tick armed before it is still due.
    await runInDurableObject(overview(), async (_o: Overview, state) => {
      expect(state.getWebSockets()).toHaveLength(0);
      state.storage.sql.exec("INSERT INTO viewers (sid, clients) VALUES (?, ?)", dropped, JSON.stringify([a.id]));
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(overview())).toBe(true);
    expect(await sids()).not.toContain(dropped);
  });

  it("sends each scoped viewer the rows of its clients among those an update changed, viewers of the same clients alike", async () => {
    const [a, b, c] = [await createClient(), await createClient(), await createClient()];
    // A minute tick between the connects and the update would send every row, the zeros too.
    await clearOfMinuteTurn();
    const now = Date.now();
    await overview().relayed([a, b, c].map((x) => sentRollup(x.id, 0, now)));
    const connect = async (token: string) => {
      const ws = await LiveSocket.connect("/v1/live", await bearer(token));
      await ws.next<Msg>();
      return ws;
    };
    const ofA = await signIn("viewer", [a.id]);
    const sockets = { a1: await connect(ofA), a2: await connect(ofA), b: await connect(await signIn("viewer", [b.id])), ab: await connect(await signIn("viewer", [a.id, b.id])) };
    try {
      // One relay, so one update carries all three rows.
      await overview().relayed([a, b, c].map((x) => sentRollup(x.id, 5, now, now + 60_000)));
      const shown = async (ws: LiveSocket) => {
        const update = await ws.nextWhere<Msg>((m) => m.type === "update");
        return update.clients.map((r): [string, number] => [r.client_id, r.today.sent]);
      };
      expect(await shown(sockets.a1)).toEqual([[a.id, 5]]);
      expect(await shown(sockets.a2)).toEqual([[a.id, 5]]);
      expect(await shown(sockets.b)).toEqual([[b.id, 5]]);
      expect(new Map(await shown(sockets.ab))).toEqual(new Map([[a.id, 5], [b.id, 5]]));
    } finally {
      for (const ws of Object.values(sockets)) ws.close();
    }
  });

  it("keeps a viewer's scope across eviction of the overview", async () => {
    const a = await createClient();
    const b = await createClient();
    const viewer = await signIn("viewer", [a.id]);
    const ws = await LiveSocket.connect("/v1/live", await bearer(viewer));
    await ws.next<Msg>();
    await evictDurableObject(overview());
    await ingestNow(b.phones[0]!, ["failed"]);
    await ingestNow(a.phones[0]!, ["read"]);
    const update = await ws.nextWhere<Msg>((m) => rowOf(m, a.id)?.today.read === 1);
    expect(update.clients.map((c) => c.client_id)).toEqual([a.id]);
    expect(ws.seen.flatMap((m) => (m as Msg).clients.map((c) => c.client_id))).not.toContain(b.id);
    ws.close();
  });

  it("keeps the scope of accepted sockets only: an upgrade refused for too many sockets leaves none behind", async () => {
    const { id } = await createClient();
    const viewer = await bearer(await signIn("viewer", [id]));
    const open = await Promise.all(Array.from({ length: MAX_SOCKETS_PER_SESSION }, () => LiveSocket.connect("/v1/live", viewer)));
    for (let i = 0; i < 3; i++) {
      const refused = (await LiveSocket.open("/v1/live", viewer)) as Response;
      expect([refused.status, ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([429, "too_many_sockets"]);
    }
    const scopes = await runInDurableObject(overview(), (_i, state) => state.storage.sql.exec("SELECT count(*) AS n FROM viewers WHERE clients = ?", JSON.stringify([id])).one().n);
    expect(scopes).toBe(MAX_SOCKETS_PER_SESSION);
    await Promise.all(open.map((ws) => (ws.close(), ws.closed)));
  });

  it("moves the current minute and the hour on the minute tick, without new events", async () => {
    const { id, phones } = await createClient();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    // The event must still be in "this minute" when its row arrives, or the wait below never ends: a
    // fresh-clone CI run, where ingest → Overview took seconds, twice timed out on that minute turn.
    await clearOfMinuteTurn(10_000);
    await ingestNow(phones[0]!, ["sent"]);
    await ws.nextWhere<Msg>((m) => rowOf(m, id)?.minute.sent === 1);
    // Let two minutes pass for the stored rollup: its event moves out of "this minute" but stays in the hour.
    const past = minuteOf(Date.now() - 120_000);
    await runInDurableObject(overview(), (instance: Overview, state) => {
      checkpoint(instance);
      state.storage.sql.exec(
        "UPDATE rollups SET minutes = ? WHERE client_id = ?",
        JSON.stringify([{ minute: past, accepted: 0, sent: 1, delivered: 0, read: 0, failed: 0 }]),
        id,
      );
    });
    await evictDurableObject(overview());
    expect(await runDurableObjectAlarm(overview())).toBe(true);
    const moved = await ws.nextWhere<Msg>((m) => rowOf(m, id)?.minute.sent === 0);
    expect(rowOf(moved, id)).toMatchObject({ minute: { sent: 0 }, hour: { sent: 1 }, today: { sent: 1 } });
    ws.close();
  });

  it("merges rollups that carry only the changed minutes into the client's last hour", async () => {
    const { id } = await createClient();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    // The rollups name today's date: the day must not turn before the Overview takes them.
    await clearOfMinuteTurn();
    const now = Date.now();
    const current = minuteOf(now);
    const counts = (minute: number, sent: number) => ({ minute, accepted: 0, sent, delivered: 0, read: 0, failed: 0 });
    const today = (sent: number) => ({ accepted: 0, sent, delivered: 0, read: 0, failed: 0 });
    const day = new Date(now).toISOString().slice(0, 10);
    // Minutes before the current one, so the expectations hold if a minute turns during the test.
    // Stamped a minute ahead: a fresh Overview primes itself from the ClientCounters when its first
    // viewer connects, and that rollup of the client's (nothing yet, stamped now) must not be the later one.
    const at = now + 60_000;
    await overview().rollup({ client_id: id, day, today: today(3), minutes: [counts(current - 120_000, 2), counts(current - 60_000, 1)], at });
    // The next rollup carries only the minute that changed; the older one stays as it was.
    await overview().rollup({ client_id: id, day, today: today(5), minutes: [counts(current - 60_000, 3)], at: at + 1 });
    // A minute past the last hour drops out when it is merged.
    await overview().rollup({ client_id: id, day, today: today(6), minutes: [counts(current - 3_600_000, 1)], at: at + 2 });
    const row = await ws.nextWhere<Msg>((m) => rowOf(m, id)?.today.sent === 6);
    expect(rowOf(row, id)).toMatchObject({ hour: { sent: 5 }, today: { sent: 6 } });
    expect(rowOf(row, id)!.spark?.filter((n) => n > 0)).toEqual([2, 3]);
    ws.close();
  });

  it("sums the latest rollup of each of a client's shards once, today's only for the client's local day, the hour from its first minute", async () => {
    await clearOfMinuteTurn();
    // A zone whose date is not UTC's now: a day taken in UTC would match none of the rollups.
    const zone = new Date().getUTCHours() < 12 ? "Etc/GMT+12" : "Pacific/Kiritimati";
    const { id } = await createClient({ timezone: zone, shards: 3 });
    const now = Date.now();
    const first = hourStart(now);
    const previous = minuteOf(now) - 60_000;
    const counts = (minute: number, sent: number) => ({ minute, accepted: 0, sent, delivered: 0, read: 0, failed: 0 });
    const today = (sent: number) => ({ accepted: 0, sent, delivered: 0, read: 0, failed: 0 });
    const day = localDate(now, zone);
    const shard0 = { client_id: id, day, today: today(3), minutes: [counts(first, 1), counts(previous, 2)], at: now };
    const shard1 = { client_id: id, shard: 1, day, today: today(4), minutes: [counts(previous, 4)], at: now };
    // A shard that last reported before the client's local midnight: its minutes are in the hour, its today is not.
    const shard2 = { client_id: id, shard: 2, day: localDate(now - DAY_MS, zone), today: today(100), minutes: [counts(previous, 5)], at: now - 1 };
    await overview().rollup(shard0);
    await overview().rollup(shard1);
    await overview().rollup(shard2);
    // Shard 0's next rollup carries only the minute that changed; the first minute it held stays.
    await overview().rollup({ ...shard0, today: today(5), minutes: [counts(previous, 4)], at: now + 1 });
    // Twice, and an older one of shard 0's after its newer: the values held do not move.
    await overview().relayed([shard1, { ...shard0, today: today(2), minutes: [counts(previous, 1)], at: now - 1_000 }]);
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    const row = rowOf(await ws.next<Msg>(), id)!;
    expect([row.today.sent, row.hour.sent, row.spark![0], row.spark!.at(-2)]).toEqual([5 + 4, 1 + 4 + 4 + 5, 1, 4 + 4 + 5]);
    ws.close();
  });

  it("sends a client's row again only when it changed: a later rollup with the same counts sends nothing", async () => {
    const [a, b] = await Promise.all([createClient(), createClient()]);
    await clearOfMinuteTurn();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    const now = Date.now();
    const rollupOf = (id: string, at: number) => sentRollup(id, 1, now, at);
    // Stamped a minute ahead, as above: a fresh Overview's priming rollups (nothing yet, stamped now) are older.
    const at = now + 60_000;
    await overview().rollup(rollupOf(a.id, at));
    await ws.nextWhere<Msg>((m) => rowOf(m, a.id) !== undefined);
    // What a client's whole-hour resend looks like: nothing new, stamped later.
    await overview().rollup(rollupOf(a.id, at + 1));
    await overview().rollup(rollupOf(b.id, at + 1));
    await ws.nextWhere<Msg>((m) => rowOf(m, b.id) !== undefined);
    expect(ws.seen.filter((m) => (m as Msg).type === "update" && rowOf(m as Msg, a.id))).toHaveLength(1);
    ws.close();
  });

  it("sends a viewer of a few busy clients at most twenty updates a second, the last counts last", async () => {
    const { id } = await createClient();
    // The minute tick sends every row again, outside the interval: not during the count.
    await clearOfMinuteTurn();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    const now = Date.now();
    const started = Date.now();
    for (let sent = 1; sent <= 60; sent++) {
      await overview().rollup(sentRollup(id, sent, now, now + 60_000 + sent));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const elapsed = Date.now() - started;
    await ws.nextWhere<Msg>((m) => rowOf(m, id)?.today.sent === 60);
    const updates = ws.seen.filter((m) => (m as Msg).type === "update" && rowOf(m as Msg, id));
    expect(updates.length).toBeLessThanOrEqual(Math.floor(elapsed / 50) + 2);
    ws.close();
  });

  it("sends the minute tick's update in place of the one waiting for its interval, not as well", async () => {
    const { id } = await createClient();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    const now = Date.now();
    type Timed = { broadcastTimer: unknown; lastBroadcastAt: number };
    // Rollups until one waits for its update when the tick comes. Before 2026-12-04 the update it
    // overtook still went out, and while rollups kept coming two chains of updates took turns.
    let tickedAt: number | null = null;
    for (let sent = 1; tickedAt === null && sent <= 50; sent++) {
      await overview().rollup(sentRollup(id, sent, now, now + 60_000 + sent));
      tickedAt = await runInDurableObject(overview(), async (instance: Overview) => {
        const timed = instance as unknown as Timed;
        if (timed.broadcastTimer === null) return null;
        await instance.alarm();
        return timed.lastBroadcastAt;
      });
    }
    expect(tickedAt).not.toBeNull();
    // Quiet for three intervals: no update may follow the tick's.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await runInDurableObject(overview(), (instance: Overview) => (instance as unknown as Timed).lastBroadcastAt)).toBe(tickedAt);
    ws.close();
  });

  it("sends an update whose read of the client list failed once D1 answers again, not at the next minute tick", async () => {
    const { id } = await createClient();
    // The minute tick would send the row anyway.
    await clearOfMinuteTurn();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    type Inner = { env: Env; directoryAt: number };
    try {
      const now = Date.now();
      await runInDurableObject(overview(), (instance: Overview) => {
        const inner = instance as unknown as Inner;
        let failures = 1;
        // D1 blips on the next read of the list, made due now: the read of the update that carries this rollup.
        const prepare = (query: string) => {
          if (/from "clients"/i.test(query) && failures-- > 0) throw new Error("D1_ERROR: Network connection lost.");
          return env.DB.prepare(query);
        };
        inner.env = { ...inner.env, DB: withMethods(env.DB, { prepare }) };
        inner.directoryAt = 0;
        // Stamped a minute ahead, as above: a fresh Overview's priming rollups (stamped now) are older.
        instance.relayed([sentRollup(id, 3, now, now + 60_000)]);
      });
      // Before, the update's rows were lost with the failed read (and its rejection went unhandled).
      await vi.waitFor(() => expect(ws.seen.some((m) => rowOf(m as Msg, id)?.today.sent === 3)).toBe(true), HELD_WAIT);
      expect(warnings.mock.calls.some(([line]) => String(line).includes('"event":"overview_broadcast_failed"'))).toBe(true);
    } finally {
      warnings.mockRestore();
      await runInDurableObject(overview(), (instance: Overview) => {
        const inner = instance as unknown as Inner;
        inner.env = { ...inner.env, DB: env.DB };
      });
      ws.close();
    }
  });

  it("leaves a viewer on the latest counts when an update overtakes one waiting for the sessions check", async () => {
    const { id } = await createClient();
    // The minute tick would send the row again.
    await clearOfMinuteTurn();
    const ws = await LiveSocket.connect("/v1/live", await bearer());
    await ws.next<Msg>();
    // A new instance: its first update asks D1 about its viewers' sessions (`openSockets`, every 10 s).
    await evictDurableObject(overview());
    const now = Date.now();
    type Inner = { env: Env };
    try {
      await runInDurableObject(overview(), (instance: Overview) => {
        const inner = instance as unknown as Inner;
        // That check takes 300 ms, as a D1 round trip under load may; the client list answers at once.
        const batch = (async (statements: D1PreparedStatement[]) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return env.DB.batch(statements);
        }) as D1Database["batch"];
        inner.env = { ...inner.env, DB: withMethods(env.DB, { batch }) };
        // Stamped a minute ahead: a fresh Overview's priming rollups (stamped now) are older.
        instance.relayed([sentRollup(id, 1, now, now + 60_000)]);
      });
      // The client's next counts, due an interval after the first update began, while it waits.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await overview().relayed([sentRollup(id, 2, now, now + 60_100)]);
      await vi.waitFor(() => expect(ws.seen.some((m) => rowOf(m as Msg, id)?.today.sent === 2)).toBe(true), HELD_WAIT);
      // Long enough for the first update's send, which came last before: 1 after 2, kept by `sent`.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const shown = ws.seen.map((m) => rowOf(m as Msg, id)?.today.sent).filter((sent) => sent !== undefined);
      expect(shown.at(-1)).toBe(2);
    } finally {
      await runInDurableObject(overview(), (instance: Overview) => {
        const inner = instance as unknown as Inner;
        inner.env = { ...inner.env, DB: env.DB };
      });
      ws.close();
    }
  });

  it("spaces updates that carry hundreds of rows up to four a second, however often the rollups come", async () => {
    const ids = Array.from({ length: 600 }, () => unique("busy"));
    const rows = ids.map((id) => `('${id}', 'Busy ${id}', 'UTC', 'BRL', 1, 1, ${Date.now()})`).join(", ");
    await env.DB.prepare(`INSERT INTO clients (id, name, timezone, currency, shards, active, created_at) VALUES ${rows}`).run();
    const now = Date.now();
    const rollups = (sent: number) => ids.map((id) => sentRollup(id, sent, now, now + 60_000 + sent));
    // Heard from before anyone watches, so the viewer's connect does not prime them from their objects.
    await overview().relayed(rollups(0));
    // The minute tick sends at once, outside the cadence counted here.
    await clearOfMinuteTurn();
    // A viewer of one of them: the cadence follows the rows that changed, its messages stay small.
    const ws = await LiveSocket.connect("/v1/live", await bearer(await signIn("viewer", [ids[0]!])));
    await ws.next<Msg>();
    try {
      // Relayed from inside the object, every 25 ms: through RPC from the test, 600 rollups took longer than that.
      const elapsed = await runInDurableObject(overview(), async (instance: Overview) => {
        const started = Date.now();
        for (let sent = 1; sent <= 40; sent++) {
          instance.relayed(rollups(sent));
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        return Date.now() - started;
      });
      await ws.nextWhere<Msg>((m) => rowOf(m, ids[0]!)?.today.sent === 40);
      const updates = ws.seen.filter((m) => (m as Msg).type === "update");
      // Its one client of the 600 that changed: found by its scope, not by a pass over the rows.
      expect(new Set(updates.flatMap((m) => (m as Msg).clients.map((c) => c.client_id)))).toEqual(new Set([ids[0]]));
      expect(updates.length).toBeGreaterThan(1);
      expect(updates.length).toBeLessThanOrEqual(Math.floor(elapsed / 250) + 2);
    } finally {
      ws.close();
      await env.DB.prepare("UPDATE clients SET active = 0 WHERE id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(ids)).run();
    }
  });

  it("sends a viewer of no client an empty snapshot", async () => {
    const ws = await LiveSocket.connect("/v1/live", await bearer(await signIn("viewer", [])));
    expect(await ws.next<Msg>()).toEqual({ type: "snapshot", clients: [] });
    ws.close();
  });

  it("saves the rollups of all clients that reported together, at the checkpoint", async () => {
    const clients = await Promise.all([createClient(), createClient()]);
    const ids = clients.map((c) => c.id);
    // A checkpoint timer the tests before started may be due any moment: this one starts with the first rollup.
    await runInDurableObject(overview(), checkpoint);
    const now = Date.now();
    const first = await overview().rollup(sentRollup(ids[0]!, 1, now));
    const second = await overview().rollup(sentRollup(ids[1]!, 2, now));
    expect(second.epoch).toBe(first.epoch);
    expect(second.n).toBeGreaterThan(first.n);
    const stored = (state: DurableObjectState) =>
      state.storage.sql.exec<{ client_id: string; today: string }>("SELECT client_id, today FROM rollups WHERE client_id IN (?, ?) ORDER BY client_id", ...ids).toArray();
    const { before, after, saved } = await runInDurableObject(overview(), (instance: Overview, state) => {
      const before = stored(state).length;
      checkpoint(instance);
      return { before, after: stored(state), saved: instance.saved() };
    });
    expect(before).toBe(0);
    expect(after.map((r) => [r.client_id, JSON.parse(r.today).sent])).toEqual([...ids].sort().map((id) => [id, id === ids[0] ? 1 : 2]));
    expect(saved).toMatchObject({ epoch: first.epoch });
    expect(saved.savedThrough).toBeGreaterThanOrEqual(second.n);
    // A rollup after the checkpoint is not in SQLite yet, and its receipt must not say it is.
    const third = await overview().rollup(sentRollup(ids[0]!, 3, now));
    expect(third.savedThrough).toBeLessThan(third.n);
  });

  it("gets a client's whole hour again when it restarted before saving the client's rollup", async () => {
    const { id, phones } = await createClient();
    await ingestNow(phones[0]!, ["sent", "delivered"]);
    const heldNow = () => held(id);
    await vi.waitFor(async () => expect(await heldNow()).toBeDefined(), HELD_WAIT);
    // Restarted before its checkpoint (a deploy or a crash; an idle eviction waits for the checkpoint
    // timer): the rollup is gone.
    await restart(overview());
    expect(await heldNow()).toBeUndefined();
    // The client handed that rollup to the Worker to relay and cannot know whether it was saved: its
    // flush alarm sends the whole hour; the same after the client's own object restarted.
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    expect(await heldNow()).toMatchObject({ sent: 1, delivered: 1 });
    await ingestNow(phones[0]!, ["read"]);
    await vi.waitFor(async () => expect((await heldNow())?.read).toBe(1), HELD_WAIT);
    await restart(overview());
    await restart(counter(id));
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    expect(await heldNow()).toMatchObject({ sent: 1, delivered: 1, read: 1 });
  });

  it("asks whether a rollup it sent itself was saved, and resends the whole hour to a restarted Overview", async () => {
    const { id } = await createClient();
    // Called directly, without relaying: the object's rollup timer sends, and keeps the receipt.
    await counter(id).ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "sent"), event(id, "failed")]));
    await vi.waitFor(async () => expect((await held(id))?.failed).toBe(1), HELD_WAIT);
    // Asked before the Overview's checkpoint: not saved yet, so the object asks again at its next alarm.
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    await restart(overview());
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    expect(await held(id)).toMatchObject({ sent: 1, failed: 1 });
  });

  it("sends a rollup whose call to the Overview failed again a rollup interval later, not only at its flush alarm", async () => {
    const { id } = await createClient();
    let failed = false;
    let restore = () => {};
    await runInDurableObject(overview(), (instance: Overview) => {
      const proto = Object.getPrototypeOf(instance) as { rollup: (u: ClientRollup) => unknown };
      const original = proto.rollup;
      proto.rollup = function (this: unknown, u: ClientRollup) {
        if (failed || u.client_id !== id) return original.call(this, u);
        failed = true;
        throw new Error("the Overview is unreachable");
      };
      restore = () => void (proto.rollup = original);
    });
    try {
      // Called directly, without relaying: the object's own rollup timer sends, and retries.
      await counter(id).ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "sent"), event(id, "failed")]));
      await vi.waitFor(async () => expect((await held(id))?.failed).toBe(1), HELD_WAIT);
      expect(failed).toBe(true);
    } finally {
      restore();
    }
  });

  it("resends the whole hour when its next rollup lands in a restarted Overview, so no minute sent before the restart is lost", async () => {
    const { id } = await createClient();
    const heldMinutes = () => minutesHeld(id);
    const now = Date.now();
    const earlier = minuteOf(now) - 120_000;
    await counter(id).ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "sent", earlier)]));
    await vi.waitFor(async () => expect(await heldMinutes()).toEqual([[earlier, 1, 0]]), HELD_WAIT);
    await restart(overview());
    // This rollup carries only the minute it changed, and its receipt names another Overview instance.
    await counter(id).ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "read", now)]));
    await vi.waitFor(async () => expect(await heldMinutes()).toEqual([[earlier, 1, 0], [minuteOf(now), 0, 1]]), HELD_WAIT);
  });

  it("gets the rollups of clients ingested through the Worker relayed by it", async () => {
    const clients = await Promise.all([createClient(), createClient(), createClient()]);
    await Promise.all(clients.map((c) => ingestNow(c.phones[0]!, ["sent", "delivered"])));
    for (const c of clients) await vi.waitFor(async () => expect((await held(c.id))?.delivered).toBe(1), HELD_WAIT);
    for (const c of clients) {
      const handedOff = await runInDurableObject(counter(c.id), (instance: ClientCounter) => (instance as unknown as { live: { handedOff: boolean } }).live.handedOff);
      expect(handedOff).toBe(true);
    }
    // A sharded client's shards report in the same relay: each shard's rollup reaches the Overview as its own.
    const sharded = (await createClient({ shards: 2 })).id;
    const ids = Array.from({ length: 40 }, () => unique("wamid"));
    const inShard = (shard: number) => ids.find((m) => messageShard(m, 2) === shard)!;
    await ingest([status(sharded, inShard(0), "sent", Date.now()), status(sharded, inShard(1), "read", Date.now())]);
    await vi.waitFor(async () => expect([(await held(sharded, 0))?.sent, (await held(sharded, 1))?.read]).toEqual([1, 1]), HELD_WAIT);
  });

  it("relays a client's rollups that wait together as one that carries the minutes of both", async () => {
    const { id } = await createClient();
    const now = Date.now();
    const minute = minuteOf(now);
    const rollup = (at: number, sent: number, minutes: [number, number][]): ClientRollup => ({
      client_id: id, day: new Date(now).toISOString().slice(0, 10), today: { accepted: 0, sent, delivered: 0, read: 0, failed: 0 },
      minutes: minutes.map(([m, n]) => ({ minute: m, accepted: 0, sent: n, delivered: 0, read: 0, failed: 0 })), at,
    });
    const ctx = { waitUntil: (p: Promise<unknown>) => void p };
    // Two ingest calls of one client within the relay interval: the second rollup carries only its minute.
    relayRollups(env, ctx, [rollup(now, 2, [[minute - 60_000, 2]])]);
    relayRollups(env, ctx, [rollup(now + 1, 3, [[minute, 1]])]);
    await vi.waitFor(async () => expect(await minutesHeld(id)).toEqual([[minute - 60_000, 2, 0], [minute, 1, 0]]), HELD_WAIT);
    expect((await held(id))?.sent).toBe(3);
  });

  it("relays a rollup at once after a quiet spell, and what comes next an interval after that relay", async () => {
    const { id } = await createClient();
    const now = Date.now();
    const drains: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void drains.push(p) };
    // This isolate's last relay (another test's) an interval ago.
    await new Promise((resolve) => setTimeout(resolve, 150));
    vi.useFakeTimers({ toFake: ["setTimeout", "Date"] });
    try {
      relayRollups(env, ctx, [sentRollup(id, 1, now)]);
      await vi.advanceTimersByTimeAsync(1);
      await drains[0];
      expect((await held(id))?.sent).toBe(1);
      relayRollups(env, ctx, [sentRollup(id, 2, now, now + 1)]);
      await vi.advanceTimersByTimeAsync(RELAY_INTERVAL_MS - 10);
      expect((await held(id))?.sent).toBe(1);
      await vi.advanceTimersByTimeAsync(10);
      await drains[1];
      expect((await held(id))?.sent).toBe(2);
    } finally {
      // The Overview shares this isolate: a checkpoint timer it armed on the fake clock would never
      // fire and, still set, would keep it from arming another for the rest of the file.
      await runInDurableObject(overview(), checkpoint);
      vi.useRealTimers();
    }
  });

  it("hands the rollup of every call to a caller that relays, with the minutes that call changed", async () => {
    const { id } = await createClient();
    const client = { id, timezone: "UTC" };
    await clearOfMinuteTurn();
    const first = await counter(id).ingest(client, encodeBatch([event(id, "sent")]), { relayRollup: true });
    expect(first.rollup).toMatchObject({ client_id: id, today: { sent: 1 } });
    const read = event(id, "read");
    const second = await counter(id).ingest(client, encodeBatch([read]), { relayRollup: true });
    expect(second.rollup).toMatchObject({ client_id: id, today: { sent: 1, read: 1 } });
    expect(second.rollup!.minutes).toEqual([expect.objectContaining({ sent: 1, read: 1 })]);
    // The oldest minute of the rolling hour is still in it.
    const oldest = hourStart(Date.now());
    const third = await counter(id).ingest(client, encodeBatch([event(id, "delivered", oldest)]), { relayRollup: true });
    expect(third.rollup!.minutes).toEqual([expect.objectContaining({ minute: oldest, delivered: 1 })]);
    // A call of duplicates changed nothing.
    expect((await counter(id).ingest(client, encodeBatch([read]), { relayRollup: true })).rollup).toBeNull();
  });

  it("sends nothing itself after a relayed call (no timer keeps it from hibernating); its flush alarm repairs a lost relay", async () => {
    const { id } = await createClient();
    const client = { id, timezone: "UTC" };
    await counter(id).ingest(client, encodeBatch([event(id, "sent")]), { relayRollup: true });
    await counter(id).ingest(client, encodeBatch([event(id, "read")]), { relayRollup: true });
    // Nobody relays either rollup, and no timer is left to send one (until 2026-11-30 a timer sent
    // the second within 2 s).
    const timers = await runInDurableObject(counter(id), (instance: ClientCounter) => {
      const live = (instance as unknown as { live: { rollupTimer: unknown; broadcastTimer: unknown } }).live;
      return [live.rollupTimer, live.broadcastTimer];
    });
    expect(timers).toEqual([null, null]);
    expect(await held(id)).toBeUndefined();
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    expect(await held(id)).toMatchObject({ sent: 1, read: 1 });
  });

  it("comes back to ask about the whole hour only when no flush is due, and such a wake leaves the outbox for its flush", async () => {
    const { id } = await createClient();
    const client = { id, timezone: "UTC" };
    const nextAlarm = () => runInDurableObject(counter(id), (instance: ClientCounter) => instance.objectStatus(Date.now()));
    await counter(id).ingest(client, encodeBatch([event(id, "sent")]), { relayRollup: true });
    // The flush alarm: the relayed rollup may be lost, so the whole hour goes out, and with nothing
    // left to flush the object comes back after the Overview's checkpoint to ask whether it was saved.
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    const afterFlush = await nextAlarm();
    expect(afterFlush.lake_backlog_events).toBe(0);
    expect(afterFlush.next_alarm_at! - Date.now()).toBeLessThan(10_000);
    // The client sends again before that wake: the wake asks, and leaves the new rows to their flush.
    await counter(id).ingest(client, encodeBatch([event(id, "read")]), { relayRollup: true });
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    const afterWake = await nextAlarm();
    expect(afterWake.lake_backlog_events).toBe(1);
    // Its next alarm is that flush, which settles too: no wake every few seconds while the client
    // sends (until 2026-12-06 each came back 6 s later, flushed a file and sent a whole hour).
    expect(afterWake.next_alarm_at! - Date.now()).toBeGreaterThan(30_000);
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    expect((await nextAlarm()).lake_backlog_events).toBe(0);
    expect(await held(id)).toMatchObject({ sent: 1, read: 1 });
  });

  it("comes back to ask after the checkpoint while the lake's next retry is more than a minute away", async () => {
    const { id } = await createClient();
    const client = { id, timezone: "UTC" };
    await counter(id).ingest(client, encodeBatch([event(id, "sent")]), { relayRollup: true });
    // R2 is down and has been for five flushes: the next retry waits 160 s.
    await runInDurableObject(counter(id), (instance: ClientCounter) => {
      const lake = (instance as unknown as { lake: { bucket: R2Bucket; failures: number } }).lake;
      lake.failures = 5;
      lake.bucket = withMethods(lake.bucket, { put: (() => Promise.reject(new Error("injected R2 outage"))) as R2Bucket["put"] });
    });
    expect(await runDurableObjectAlarm(counter(id))).toBe(true);
    const status = await runInDurableObject(counter(id), (instance: ClientCounter) => instance.objectStatus(Date.now()));
    expect(status.lake_flush_failures).toBe(6);
    // The Overview's rollup is not left waiting for that retry.
    expect(status.next_alarm_at! - Date.now()).toBeLessThan(10_000);
  });

  it("merges a client's rollups in whatever order they arrive", () => {
    const minute = minuteOf(Date.now());
    const counts = (sent: number, read: number) => ({ accepted: 0, sent, delivered: 0, read, failed: 0 });
    const rollup = (at: number, today: ReturnType<typeof counts>, minutes: [number, number, number][]) => ({
      client_id: "c",
      day: "2026-11-30",
      today,
      minutes: minutes.map(([m, sent, read]) => ({ minute: m, ...counts(sent, read) })),
      at,
    });
    // Two isolates relay a client's calls: the older rollup (the last events of the previous minute)
    // lands after the newer one, which only carries this minute.
    const older = rollup(minute + 1_000, counts(3, 0), [[minute - 60_000, 3, 0]]);
    const newer = rollup(minute + 2_000, counts(3, 2), [[minute, 0, 2]]);
    const held = rollup(minute - 30_000, counts(1, 0), [[minute - 60_000, 1, 0]]);
    for (const order of [[older, newer], [newer, older]]) {
      const merged = order.reduce((h, u) => mergeRollup(h, u), held);
      expect(merged.today).toEqual(counts(3, 2));
      expect(merged.minutes).toEqual([{ minute: minute - 60_000, ...counts(3, 0) }, { minute, ...counts(0, 2) }]);
      expect(merged.at).toBe(minute + 2_000);
    }
    const settled = mergeRollup(mergeRollup(held, newer), older);
    expect(mergeRollup(settled, older)).toBe(settled);
    expect(mergeRollup(settled, held)).toBe(settled);
    // A rollup from over an hour before lands last: the minutes the hour no longer has are not taken in.
    const stale = rollup(minute - 61 * 60_000, counts(1, 0), [[minute - 61 * 60_000, 1, 0]]);
    expect(mergeRollup(settled, stale)).toBe(settled);
  });

  it("ends with the client's latest counts whatever order its rollups arrive in, and applying one again changes nothing", () => {
    const now = minuteOf(Date.now());
    const call = fc.record({ minute: fc.integer({ min: 0, max: 3 }), status: fc.constantFrom(...STATUSES), n: fc.integer({ min: 1, max: 5 }), wholeHour: fc.boolean() });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 12 }).chain((calls) => fc.tuple(fc.constant(calls), fc.shuffledSubarray([...calls.keys()], { minLength: calls.length }))), ([calls, order]) => {
        // A ClientCounter's counts after each call, and the rollup it hands back: today, and the
        // minute the call changed (or, after a wake, every minute it has).
        const minutes = new Map<number, MinuteCounts>();
        const today = { accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
        const rollups: ClientRollup[] = calls.map((c, i) => {
          const minute = now - c.minute * 60_000;
          const m = minutes.get(minute) ?? { minute, accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
          m[c.status] += c.n;
          minutes.set(minute, m);
          today[c.status] += c.n;
          const carried = c.wholeHour ? [...minutes.values()] : [m];
          // Calls served back to back can share a millisecond.
          return { client_id: "c", day: "2026-11-30", today: { ...today }, minutes: carried.map((x) => ({ ...x })), at: now + Math.floor(i / 2) };
        });
        const merged = order.reduce<ClientRollup | undefined>((held, i) => mergeRollup(held, rollups[i]!), undefined)!;
        expect(merged.today).toEqual(today);
        expect(merged.minutes).toEqual([...minutes.values()].sort((a, b) => a.minute - b.minute));
        for (const r of rollups) expect(mergeRollup(merged, r)).toBe(merged);
      }),
    );
  });

  it("refuses the overview to anonymous callers and a client-scoped ticket", async () => {
    expect(((await LiveSocket.open("/v1/live")) as Response).status).toBe(401);
    const { id } = await createClient();
    const res = await postJson("/v1/live/ticket", { client_id: id }, await admin());
    const { ticket } = (await res.json()) as { ticket: string };
    expect(((await LiveSocket.open(`/v1/live?ticket=${ticket}`)) as Response).status).toBe(403);
    const overviewTicket = ((await (await postJson("/v1/live/ticket", {}, await admin())).json()) as { ticket: string }).ticket;
    const ws = await LiveSocket.connect(`/v1/live?ticket=${overviewTicket}`);
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    ws.close();
  });

  it("assigns each client to a stable shard of OVERVIEW_SHARDS, a whole number from 1 to 64", () => {
    expect(overviewShard("acme", 8)).toBe(overviewShard("acme", 8));
    const shards = new Set(Array.from({ length: 200 }, (_, i) => overviewShard(`client-${i}`, 8)));
    expect(shards.size).toBe(8);
    expect(overviewShard("anything", 1)).toBe(0);
    expect(overviewShards({ OVERVIEW_SHARDS: "4" })).toBe(4);
    expect(overviewShards({ OVERVIEW_SHARDS: "64" })).toBe(64);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    for (const odd of ["", "0", "-2", "1.5", "65", "four", "four"]) expect(overviewShards({ OVERVIEW_SHARDS: odd })).toBe(1);
    const logged = errors.mock.calls.map(([line]) => JSON.parse(String(line)) as { event: string; value: string });
    errors.mockRestore();
    expect(logged.filter((l) => l.event === "overview_shards_invalid").map((l) => l.value)).toEqual(["", "0", "-2", "1.5", "65", "four"]);
  });
});

// Last in the file: the clock it sets ahead moves the shared Overview's minutes for any test after it.
describe("overview live socket, access taken away", () => {
  it("closes a viewer's overview once an admin takes one of its clients away, at the Overview's next check", async () => {
    const [taken, kept] = [await createClient(), await createClient()];
    const token = await signIn("viewer", [taken.id, kept.id]);
    const userId = ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
    const ws = await LiveSocket.connect("/v1/live", await bearer(token));
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    expect((await postJson(`/v1/admin/users/${userId}`, { client_ids: [kept.id] }, await admin(), "PATCH")).status).toBe(200);
    // The Overview is shared and busy: its last check may be just behind it, so the next is one interval on.
    await withClockAhead(REVOCATION_CHECK_MS + 1_000, async () => {
      await ingestNow(taken.phones[0]!, ["sent"]);
      // Closed, the dashboard reconnects with what the viewer may see now, and the taken client's row goes.
      expect(await ws.closed).toEqual({ code: SESSION_ENDED, reason: "session ended" });
    });
  });
});
