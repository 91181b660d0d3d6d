import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { hourStart, type ClientLiveMessage } from "../../schema/live.ts";
import { MINUTE_MS, localDate, minuteOf } from "../../schema/time.ts";
import { admin, authed, call, createClient, counters, messageIn, postJson } from "./helpers.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { LiveSocket, clearOfMinuteTurn } from "./live-helpers.ts";

type Msg = ClientLiveMessage;
const bearer = async () => ({ authorization: `Bearer ${await admin()}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The last counts of `minute` the socket was told (snapshot or update), or undefined. */
function lastTold(ws: LiveSocket, minute: number): Record<string, number> | undefined {
  let last: Record<string, number> | undefined;
  for (const m of ws.seen as Msg[]) for (const c of m.minutes) if (c.minute === minute) last = c as unknown as Record<string, number>;
  return last;
}

/**
 * Puts `around` in front of `liveRollup` in the isolate of the client's `shard` (its ClientCounters
 * share the prototype, so `around` hears other objects' calls too: `args[0]` is the client); resolves
 * with the function that takes it out again.
 */
async function aroundLiveRollup(id: string, shard: number, around: (answer: () => unknown, args: unknown[]) => unknown): Promise<() => void> {
  let restore = () => {};
  await runInDurableObject(counterOf(env, id, shard), (counter: ClientCounter) => {
    const proto = Object.getPrototypeOf(counter) as { liveRollup: (...a: unknown[]) => unknown };
    const original = proto.liveRollup;
    proto.liveRollup = function (this: unknown, ...args: unknown[]) {
      return around(() => original.apply(this, args), args);
    };
    restore = () => void (proto.liveRollup = original);
  });
  return restore;
}

/** A late event's minute: two hours back, and a zone (of two 26 h apart) whose today it is in, so today moves too. */
function twoHoursBack(): { x: number; timezone: string } {
  const now = Date.now();
  const x = minuteOf(now) - 120 * MINUTE_MS;
  return { x, timezone: ["Etc/GMT+12", "Pacific/Kiritimati"].find((z) => localDate(x, z) === localDate(now, z))! };
}

/** The next message that tells `minute`, or null when none comes within `ms`. */
const nextTelling = (ws: LiveSocket, minute: number, ms: number) =>
  Promise.race([ws.nextWhere<Msg>((m) => m.minutes.some((c) => c.minute === minute)), sleep(ms).then(() => null)]);

/**
 * A client of 2 shards in Etc/GMT+12, a sent on each shard at an instant in the local today of that
 * zone or of Kiritimati (26 h apart: such an instant always exists), and a viewer who got its snapshot.
 */
async function watchedBeforeZoneChange() {
  await clearOfMinuteTurn(10_000);
  const now = Date.now();
  const [z1, z2] = ["Etc/GMT+12", "Pacific/Kiritimati"];
  const inToday = (t: number, z: string) => localDate(t, z) === localDate(now, z);
  let t = now;
  for (let k = 1; k < 24 * 12 && inToday(t, z1) === inToday(t, z2); k++) t = now - k * 5 * MINUTE_MS;
  expect(inToday(t, z1)).not.toBe(inToday(t, z2));
  const sentToday = (z: string) => (inToday(t, z) ? 2 : 0);
  const { id } = await createClient({ shards: 2, timezone: z1 });
  await ingest([status(id, messageIn(0, 2), "sent", t), status(id, messageIn(1, 2), "sent", t)]);
  const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
  expect((await ws.next<Msg>()).today.sent).toBe(sentToday(z1));
  return { id, ws, z2, sentToday };
}

// A sharded client's page shows the sum its shard 0 asks the other shards for every interval
// (durable-objects/client-live.ts, `sendShardSums`).
describe("a sharded client's live view", () => {
  it("counts today in the client's current time zone after a zone change, for the viewers watching", async () => {
    const { id, ws, z2, sentToday } = await watchedBeforeZoneChange();
    const res = await postJson(`/v1/admin/clients/${id}`, { timezone: z2 }, await admin(), "PATCH");
    expect(res.status).toBe(200);
    // One more event, of now: in today in every zone.
    await ingest([status(id, messageIn(1, 2), "read", Date.now())]);
    const summary = (await (await call(`/v1/clients/${id}`, authed(await admin()))).json()) as { timezone: string; today: { sent: number; read: number } };
    expect(summary.timezone).toBe(z2);
    expect(summary.today).toMatchObject({ sent: sentToday(z2), read: 1 });

    // The viewer's update says the client's today in its zone now, as GET /v1/clients/:id does (an
    // unsharded client's update is counted in the zone of the ingest call, the new one).
    const update = await ws.nextWhere<Msg>((m) => m.today.read === 1);
    expect(update.today).toMatchObject({ sent: summary.today.sent, read: 1 });
    ws.close();
  });

  it("tells the viewers watching the client's today in a new time zone though no event comes", async () => {
    const { id, ws, z2, sentToday } = await watchedBeforeZoneChange();
    expect((await postJson(`/v1/admin/clients/${id}`, { timezone: z2 }, await admin(), "PATCH")).status).toBe(200);
    // Only today moves (no minute of the hour changed): the next round tells it all the same.
    const update = await Promise.race([ws.nextWhere<Msg>((m) => m.today.sent === sentToday(z2)), sleep(3_000).then(() => null)]);
    expect(update).toMatchObject({ type: "update", minutes: [] });
    ws.close();
  });

  it("never tells viewers a partial sum of the minute leaving the hour when a shard answers after the minute turned", async () => {
    await clearOfMinuteTurn(15_000);
    const realNow = Date.now.bind(Date);
    const x = minuteOf(realNow()) - 59 * MINUTE_MS; // the oldest minute of the rolling hour
    const { id } = await createClient({ shards: 2 });
    await ingest([status(id, messageIn(0, 2), "sent", x + 1_000), status(id, messageIn(1, 2), "sent", x + 2_000)]);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    const snap = await ws.next<Msg>();
    expect(snap.minutes.find((m) => m.minute === x)).toMatchObject({ sent: 2 });

    // Shard 1 answers the next round just after the minute turned (an RPC takes a few ms; shard 0
    // took its own clock before asking). From then on every object is past the turn.
    let offset = 0;
    const clock = vi.spyOn(Date, "now").mockImplementation(() => realNow() + offset);
    const restore = await aroundLiveRollup(id, 1, (answer, args) => {
      if (offset === 0 && args[0] === id) offset = x + 60 * MINUTE_MS + 1_000 - realNow();
      return answer();
    });
    try {
      await sleep(600);
    } finally {
      restore();
      clock.mockRestore();
    }
    expect(offset).not.toBe(0);
    const stored = (await counters(id, new Date(x).toISOString(), new Date(x + MINUTE_MS).toISOString())).body.minutes;
    expect(stored).toEqual([expect.objectContaining({ minute: x, sent: 2 })]);
    ws.close();
    // What the viewer's chart last heard of minute x is what is stored.
    expect(lastTold(ws, x)).toMatchObject({ minute: x, sent: 2 });
  });

  it("tells viewers the sum over the shards of a minute more than an hour back that changes, whichever shard it changes in", async () => {
    await clearOfMinuteTurn(10_000);
    const { x, timezone } = twoHoursBack();
    const { id } = await createClient({ shards: 2, timezone });
    await ingest([status(id, messageIn(0, 2), "sent", x + 1_000), status(id, messageIn(1, 2), "sent", x + 2_000)]);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    const snap = await ws.next<Msg>();
    expect(snap.minutes.find((m) => m.minute === x)).toBeUndefined();
    expect(snap.today.sent).toBe(2);

    for (const [shard, sent] of [
      [1, 3],
      [0, 4],
    ] as const) {
      await ingest([status(id, messageIn(shard, 2), "sent", x + 3_000)]);
      const update = await nextTelling(ws, x, 3_000);
      expect(update, `no update told minute x after a late event in shard ${shard}`).not.toBeNull();
      expect(update!.type).toBe("update");
      expect(update!.minutes.find((m) => m.minute === x)).toEqual({ minute: x, accepted: 0, sent, delivered: 0, read: 0, failed: 0 });
      expect(update!.today.sent).toBe(sent);
    }
    // Each change is told once: a minute read is not read (and sent) again every round after.
    expect(await nextTelling(ws, x, 600)).toBeNull();
    ws.close();
  });

  it("tells viewers the hour's oldest minute that changed in another shard just before it left the hour", async () => {
    await clearOfMinuteTurn(20_000);
    const realNow = Date.now.bind(Date);
    const x = hourStart(realNow()); // the oldest minute of the rolling hour
    const { id } = await createClient({ shards: 2 });
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    // Shard 1's answer to the next round is read now, before the event, and held until the clock has
    // turned: no round reads minute x in the hour after the event lands.
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let held = false;
    const restore = await aroundLiveRollup(id, 1, (answer, args) => {
      // A round's question names the minutes beyond the hour it reads (the Overview's priming asks too, without).
      if (held || args[0] !== id || args[4] === undefined) return answer();
      held = true;
      const got = answer();
      return gate.then(() => got);
    });
    let offset = 0;
    const clock = vi.spyOn(Date, "now").mockImplementation(() => realNow() + offset);
    try {
      await vi.waitFor(() => expect(held).toBe(true));
      // The event lands in the last 100 ms of the minute whose end takes x out of the hour...
      offset = x + 60 * MINUTE_MS - 100 - realNow();
      await ingest([status(id, messageIn(1, 2), "sent", x + 1_000)]);
      // ...and every round from then on is past that turn.
      offset = x + 60 * MINUTE_MS + 1_000 - realNow();
      release();
      const update = await nextTelling(ws, x, 3_000);
      expect(update?.minutes.find((m) => m.minute === x)).toEqual({ minute: x, accepted: 0, sent: 1, delivered: 0, read: 0, failed: 0 });
    } finally {
      release();
      restore();
      clock.mockRestore();
      ws.close();
    }
  });

  it("tells viewers a minute more than an hour back though the round that read it from a shard failed", async () => {
    await clearOfMinuteTurn(10_000);
    const { x, timezone } = twoHoursBack();
    const { id } = await createClient({ shards: 2, timezone });
    await ingest([status(id, messageIn(0, 2), "sent", x + 1_000)]);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    // Shard 1 counts minute x for the first round that reads it, and its answer never reaches shard 0 (the round times out).
    let lost = false;
    const restore = await aroundLiveRollup(id, 1, (answer, args) => {
      const got = answer();
      if (lost || args[0] !== id || !(args[4] as number[] | undefined)?.includes(x)) return got;
      lost = true;
      return new Promise((resolve) => setTimeout(() => resolve(got), 25_000));
    });
    try {
      await ingest([status(id, messageIn(1, 2), "sent", x + 2_000)]);
      const update = await nextTelling(ws, x, 6_000);
      expect(lost).toBe(true);
      expect(update?.minutes.find((m) => m.minute === x)).toMatchObject({ minute: x, sent: 2 });
    } finally {
      restore();
      ws.close();
    }
  });

  it("gives a new viewer its snapshot though one of the client's shards does not answer a round", async () => {
    const { id } = await createClient({ shards: 2 });
    await ingest([status(id, messageIn(0, 2), "sent", Date.now()), status(id, messageIn(1, 2), "sent", Date.now())]);
    const first = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect((await first.next<Msg>()).type).toBe("snapshot");
    // Shard 1 hangs on the next round's question (a stuck object), and answers the later ones.
    let hung = false;
    const restore = await aroundLiveRollup(id, 1, (answer, args) => {
      if (hung || args[0] !== id) return answer();
      hung = true;
      return new Promise((resolve) => setTimeout(() => resolve(answer()), 25_000));
    });
    try {
      await sleep(300);
      expect(hung).toBe(true);
      const second = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
      const got = await Promise.race([second.next<Msg>(), sleep(5_000).then(() => null)]);
      // The overview's gathers give a hanging shard 2 s (GATHER_TIMEOUT_MS); here nothing comes at all.
      expect(got).toMatchObject({ type: "snapshot", today: { sent: 2 } });
      second.close();
    } finally {
      restore();
      first.close();
    }
  });
});
