import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import { liveTickets, users } from "../../schema/db.ts";
import type { ClientLiveMessage } from "../../schema/live.ts";
import { DAY_MS, localDate, minuteOf } from "../../schema/time.ts";
import { sha256Hex } from "../../workers/auth/crypto.ts";
import { issueSession } from "../../workers/auth/session.ts";
import { MAX_SOCKETS_PER_SESSION, POLICY_VIOLATION, REVOCATION_CHECK_MS, SESSION_ENDED } from "../../durable-objects/live-sockets.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { admin, authed, call, createClient, db, postJson, signIn, unique, withClockAhead, withMethods } from "./helpers.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { LiveSocket, clearOfMinuteTurn, event, ingestNow } from "./live-helpers.ts";

type Msg = ClientLiveMessage;
const bearer = async (token?: string) => ({ authorization: `Bearer ${token ?? (await admin())}` });
const stubOf = (id: string) => env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(id)) as DurableObjectStub<ClientCounter>;

async function ticketFor(token: string, clientId?: string): Promise<Response> {
  return postJson("/v1/live/ticket", clientId === undefined ? {} : { client_id: clientId }, token);
}

describe("client live socket", () => {
  it("sends a snapshot of the last hour and today on connect", async () => {
    const { id, phones } = await createClient();
    // The event's minute is the one the expectation names.
    await clearOfMinuteTurn();
    await ingestNow(phones[0]!, ["sent", "delivered"]);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    const snap = await ws.next<Msg>();
    expect(snap.type).toBe("snapshot");
    expect(snap.client_id).toBe(id);
    expect(snap.minutes).toEqual([{ minute: minuteOf(Date.now()), accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 }]);
    expect(snap.today).toEqual({ accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 });
    ws.close();
  });

  it("pushes an update with the changed minute and today's totals after ingest", async () => {
    const { id, phones } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect(await ws.next<Msg>()).toMatchObject({ type: "snapshot", minutes: [], today: { sent: 0 } });
    await clearOfMinuteTurn();
    await ingestNow(phones[0]!, ["sent", "read"]);
    const update = await ws.next<Msg>();
    expect(update.type).toBe("update");
    expect(update.minutes).toEqual([{ minute: minuteOf(Date.now()), accepted: 0, sent: 1, delivered: 0, read: 1, failed: 0 }]);
    expect(update.today).toMatchObject({ sent: 1, read: 1 });
    ws.close();
  });

  it("counts today from the client's local midnight, in the snapshot and in updates", async () => {
    // A zone whose date is not UTC's now, and an instant in exactly one of the two days; a day turns
    // (in UTC or in the zone) only at a minute turn, which the test keeps clear of.
    await clearOfMinuteTurn();
    const now = Date.now();
    const utcMidnight = Math.floor(now / DAY_MS) * DAY_MS;
    const [zone, other] = new Date(now).getUTCHours() < 12 ? ["Etc/GMT+12", utcMidnight - 11 * 3_600_000] : ["Pacific/Kiritimati", utcMidnight + 9 * 3_600_000];
    const { id } = await createClient({ timezone: zone });
    const inLocalToday = localDate(other, zone) === localDate(now, zone) ? 1 : 0;
    await stubOf(id).ingest({ id, timezone: zone }, encodeBatch([event(id, "read", other)]));
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect((await ws.next<Msg>()).today.read).toBe(inLocalToday);
    await stubOf(id).ingest({ id, timezone: zone }, encodeBatch([event(id, "sent")]));
    expect((await ws.next<Msg>()).today).toMatchObject({ sent: 1, read: inLocalToday });
    ws.close();
  });

  it("coalesces many ingest calls into one update", async () => {
    const { id } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    await ws.next<Msg>();
    // One instant for all events, so a minute that turns during the test does not split them.
    const at = Date.now();
    const earlier = minuteOf(at) - 5 * 60_000;
    // Ten separate ingest calls in one turn of the object: no broadcast can run in between.
    await runInDurableObject(stubOf(id), (counter: ClientCounter) =>
      Promise.all(Array.from({ length: 10 }, (_, i) => counter.ingest({ id, timezone: "UTC" }, encodeBatch([event(id, i % 2 ? "sent" : "delivered", i < 8 ? at : earlier)])))),
    );
    const update = await ws.next<Msg>();
    expect(update.type).toBe("update");
    expect(update.minutes.map((m) => [m.minute, m.sent, m.delivered])).toEqual([
      [earlier, 1, 1],
      [minuteOf(at), 4, 4],
    ]);
    // Five minutes back is yesterday in a run just after midnight UTC: today counts only today's.
    const earlierToday = earlier >= Math.floor(at / DAY_MS) * DAY_MS ? 1 : 0;
    expect(update.today).toMatchObject({ sent: 4 + earlierToday, delivered: 4 + earlierToday });
    // The next message is the next change, not a leftover per-event update.
    await runInDurableObject(stubOf(id), (counter: ClientCounter) => counter.ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "failed", at)])));
    const next = await ws.next<Msg>();
    expect(next.minutes).toEqual([{ minute: minuteOf(at), accepted: 0, sent: 4, delivered: 4, read: 0, failed: 1 }]);
    expect(ws.seen).toHaveLength(3);
    ws.close();
  });

  it("throttles a steady stream of calls to one update per interval, the first at once", async () => {
    const { id } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    await ws.next<Msg>();
    const calls = 40;
    const start = Date.now();
    for (let i = 0; i < calls; i++) {
      await runInDurableObject(stubOf(id), (counter: ClientCounter) => counter.ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "sent")])));
      await new Promise((r) => setTimeout(r, 10));
    }
    const span = Date.now() - start;
    await ws.nextWhere<Msg>((m) => m.today.sent === calls);
    const updates = ws.seen.length - 1;
    // Updates go out at most every 100 ms (client-live.ts), so "a few per second" however many calls
    // land; a debounce would have sent one at the end, a per-call update forty.
    expect(updates).toBeGreaterThanOrEqual(2);
    expect(updates).toBeLessThanOrEqual(Math.floor(span / 100) + 2);
    ws.close();
  });

  it("sends nothing for a batch made only of duplicates", async () => {
    const { id } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    await ws.next<Msg>();
    const e = event(id, "sent");
    await runInDurableObject(stubOf(id), (counter: ClientCounter) => counter.ingest({ id, timezone: "UTC" }, encodeBatch([e])));
    expect((await ws.next<Msg>()).today.sent).toBe(1);
    await runInDurableObject(stubOf(id), (counter: ClientCounter) =>
      Promise.all([counter.ingest({ id, timezone: "UTC" }, encodeBatch([e])), counter.ingest({ id, timezone: "UTC" }, encodeBatch([event(id, "read")]))]),
    );
    const update = await ws.next<Msg>();
    expect(update.today).toMatchObject({ sent: 1, read: 1 });
    expect(ws.seen).toHaveLength(3);
    ws.close();
  });

  it("wakes after eviction and still updates the hibernated socket", async () => {
    const { id, phones } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    await ws.next<Msg>();
    await evictDurableObject(stubOf(id));
    const sockets = await runInDurableObject(stubOf(id), (_: ClientCounter, state) => state.getWebSockets().length);
    expect(sockets).toBe(1);
    await ingestNow(phones[0]!, ["sent"]);
    const update = await ws.next<Msg>();
    expect(update).toMatchObject({ type: "update", client_id: id, today: { sent: 1 } });
    ws.close();
  });

  it("sends a sharded client's snapshot first to a socket that connects while the sums wait for D1", async () => {
    const { id } = await createClient({ shards: 2 });
    await ingest([status(id, unique("wamid"), "sent", Date.now())]);
    // Shard 0's revocation check, due with its first viewer, waits a second for D1 (a primary far away).
    await runInDurableObject(counterOf(env, id), (counter: ClientCounter) => {
      const live = (counter as unknown as { live: { env: Env } }).live;
      const batch = async <T,>(statements: D1PreparedStatement[]) => (await new Promise((resolve) => setTimeout(resolve, 1_000)), env.DB.batch<T>(statements));
      live.env = { ...live.env, DB: withMethods(env.DB, { batch }) };
    });
    const first = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect((await first.next<Msg>()).type).toBe("snapshot");
    // Before, the round that waited dropped the second socket from those owed a snapshot: its first
    // message was the update of this event.
    await ingest([status(id, unique("wamid"), "read", Date.now())]);
    await second.nextWhere<Msg>((m) => m.today.read === 1);
    expect((second.seen[0] as Msg).type).toBe("snapshot");
    first.close();
    second.close();
  });
});

describe("client live socket scope", () => {
  it("lets a viewer watch its own client and never another", async () => {
    const a = await createClient();
    const b = await createClient();
    const viewer = await signIn("viewer", [a.id]);
    const own = await LiveSocket.connect(`/v1/clients/${a.id}/live`, await bearer(viewer));
    expect((await own.next<Msg>()).client_id).toBe(a.id);
    own.close();
    const other = await LiveSocket.open(`/v1/clients/${b.id}/live`, await bearer(viewer));
    expect(other).toBeInstanceOf(Response);
    expect((other as Response).status).toBe(403);
    expect(await (other as Response).json()).toMatchObject({ error: { code: "forbidden" } });
  });

  it("refuses anonymous, non-upgrade and unknown-client requests before any object", async () => {
    const { id } = await createClient();
    const anon = (await LiveSocket.open(`/v1/clients/${id}/live`)) as Response;
    expect(anon.status).toBe(401);
    const plain = await call(`/v1/clients/${id}/live`, authed(await admin()));
    expect(plain.status).toBe(426);
    expect(await plain.json()).toMatchObject({ error: { code: "upgrade_required" } });
    const missing = (await LiveSocket.open(`/v1/clients/no-such-client/live`, await bearer())) as Response;
    expect(missing.status).toBe(404);
  });

  it("refuses the session cookie from a foreign origin", async () => {
    const { id } = await createClient();
    const cookie = `zm_session=${await admin()}`;
    const foreign = (await LiveSocket.open(`/v1/clients/${id}/live`, { cookie, origin: "https://evil.example" })) as Response;
    expect(foreign.status).toBe(403);
    const own = await LiveSocket.connect(`/v1/clients/${id}/live`, { cookie, origin: "http://zapmeter.test" });
    expect((await own.next<Msg>()).type).toBe("snapshot");
    own.close();
  });

  it("accepts a one-use ticket for exactly the stream it names", async () => {
    const a = await createClient();
    const b = await createClient();
    const viewer = await signIn("viewer", [a.id]);

    const issued = await ticketFor(viewer, a.id);
    expect(issued.status).toBe(200);
    const { ticket, expires_at } = (await issued.json()) as { ticket: string; expires_at: number };
    expect(expires_at - Date.now()).toBeLessThanOrEqual(60_000);
    const stored = await db().select().from(liveTickets).where(eq(liveTickets.hash, await sha256Hex(ticket)));
    expect(stored).toHaveLength(1);

    const ws = await LiveSocket.connect(`/v1/clients/${a.id}/live?ticket=${ticket}`);
    expect((await ws.next<Msg>()).client_id).toBe(a.id);
    ws.close();
    const again = (await LiveSocket.open(`/v1/clients/${a.id}/live?ticket=${ticket}`)) as Response;
    expect(again.status).toBe(401);
    expect(await again.json()).toMatchObject({ error: { code: "invalid_ticket" } });
    // An empty ticket is no ticket (an empty parameter reads as absent).
    for (const [ticketParam, code] of [["zlt_made-up", "invalid_ticket"], ["", "unauthenticated"]]) {
      const res = (await LiveSocket.open(`/v1/clients/${a.id}/live?ticket=${ticketParam}`)) as Response;
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code } });
    }

    expect((await ticketFor(viewer, b.id)).status).toBe(403);
    const overviewTicket = ((await (await ticketFor(viewer)).json()) as { ticket: string }).ticket;
    expect(((await LiveSocket.open(`/v1/clients/${a.id}/live?ticket=${overviewTicket}`)) as Response).status).toBe(403);
  });

  it("refuses a ticket whose session was revoked since, or whose user's password was reset since", async () => {
    const { id } = await createClient();
    const signOut = (token: string) => postJson("/v1/auth/logout", {}, token);
    const resetPassword = async (_token: string, userId: number) => postJson(`/v1/admin/users/${userId}`, { password: "a fresh passphrase" }, await admin(), "PATCH");
    for (const end of [signOut, resetPassword]) {
      const token = await signIn("viewer", [id]);
      const userId = ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
      const { ticket } = (await (await ticketFor(token, id)).json()) as { ticket: string };
      expect((await end(token, userId)).status).toBe(200);
      const res = (await LiveSocket.open(`/v1/clients/${id}/live?ticket=${ticket}`)) as Response;
      expect([end.name, res.status]).toEqual([end.name, 401]);
      expect(await res.json()).toMatchObject({ error: { code: "unauthenticated" } });
      // A ticket is dated by its own issue: one from a session that began since opens.
      const fresh = await issueSession(env.SESSION_SECRET, userId);
      const again = ((await (await ticketFor(fresh.token, id)).json()) as { ticket: string }).ticket;
      const ws = await LiveSocket.connect(`/v1/clients/${id}/live?ticket=${again}`);
      expect((await ws.next<Msg>()).type).toBe("snapshot");
      ws.close();
    }
  });

  it("gives a ticket asked for by a cookie that rotates the session to the fresh session", async () => {
    const { id } = await createClient();
    const userId = Number((JSON.parse(atob((await signIn("viewer", [id])).split(".")[1]!)) as { sub: string }).sub);
    // Past half its life: the ticket request rotates it and revokes the old id.
    const old = await issueSession(env.SESSION_SECRET, userId, Date.now() - 5 * 3_600_000);
    const res = await call("/v1/live/ticket", { method: "POST", headers: { cookie: `zm_session=${old.token}`, "content-type": "application/json" }, body: JSON.stringify({ client_id: id }) });
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toContain("zm_session=");
    const { ticket } = (await res.json()) as { ticket: string };
    const [row] = await db().select().from(liveTickets).where(eq(liveTickets.hash, await sha256Hex(ticket)));
    expect(row!.sessionId).not.toBe(old.id);
    expect(row!.sessionExpiresAt).toBeGreaterThan(old.expiresAt);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live?ticket=${ticket}`);
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    ws.close();
  });

  it("refuses an expired ticket", async () => {
    const { id } = await createClient();
    const { ticket } = (await (await ticketFor(await admin(), id)).json()) as { ticket: string };
    await db().update(liveTickets).set({ expiresAt: Date.now() - 1 }).where(eq(liveTickets.hash, await sha256Hex(ticket)));
    expect(((await LiveSocket.open(`/v1/clients/${id}/live?ticket=${ticket}`)) as Response).status).toBe(401);
  });
});

describe("a viewer of many clients", () => {
  it("opens the overview and a client's live socket, though its client list is past a socket attachment's 16 KiB", async () => {
    // 300 ids of 64 characters: the whole list on the socket (until 2026-12-06) made both upgrades a 500.
    const ids = Array.from({ length: 300 }, (_, i) => `${unique("c")}-${i}`.padEnd(64, "x"));
    await env.DB.batch(ids.map((id) => env.DB.prepare("INSERT INTO clients (id, name, created_at) VALUES (?, ?, ?)").bind(id, id, Date.now())));
    const viewer = await signIn("viewer", ids);
    const overview = await LiveSocket.connect("/v1/live", await bearer(viewer));
    expect((await overview.next<{ type: string }>()).type).toBe("snapshot");
    overview.close();
    const one = await LiveSocket.connect(`/v1/clients/${ids[0]}/live`, await bearer(viewer));
    expect((await one.next<Msg>()).client_id).toBe(ids[0]);
    one.close();
  });
});

describe("what a viewer may do with its sockets", () => {
  it("closes a socket that sends anything (viewers only listen)", async () => {
    const { id } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, await bearer());
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    ws.ws.send("x".repeat(1024));
    expect(await ws.closed).toEqual({ code: POLICY_VIOLATION, reason: "viewers only listen" });
  });

  it(`holds at most ${MAX_SOCKETS_PER_SESSION} sockets of one session on one stream`, async () => {
    const { id } = await createClient();
    const token = await signIn("viewer", [id]);
    const open = await Promise.all(Array.from({ length: MAX_SOCKETS_PER_SESSION }, () => LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${token}` })));
    const refused = (await LiveSocket.open(`/v1/clients/${id}/live`, { authorization: `Bearer ${token}` })) as Response;
    expect(refused.status).toBe(429);
    expect(refused.headers.get("cache-control")).toBe("no-store");
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("too_many_sockets");
    // Another session of the same viewer is not held back by this one's.
    const other = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${await signIn("viewer", [id])}` });
    expect((await other.next<Msg>()).type).toBe("snapshot");
    for (const ws of [...open, other]) ws.close();
  });

  it("the objects refuse an upgrade the Worker did not authorise with the contract's JSON error", async () => {
    const { id } = await createClient();
    const upgrade = { headers: { upgrade: "websocket" } };
    const refusals = [
      await counterOf(env, id).fetch("https://counter.internal/live", upgrade),
      await env.OVERVIEW.get(env.OVERVIEW.idFromName("overview-0")).fetch("https://overview.internal/live", upgrade),
      await env.OVERVIEW.get(env.OVERVIEW.idFromName("overview-1")).fetch("https://overview.internal/live", upgrade),
    ];
    expect(await Promise.all(refusals.map(async (r) => [r.status, ((await r.json()) as { error: { code: string } }).error.code]))).toEqual([
      [400, "missing_live_headers"],
      [400, "invalid_scope"],
      [421, "wrong_shard"],
    ]);
  });
});

describe("a live socket ends with its session", () => {
  /** A ticket of a viewer of `viewed` for `clientId`'s stream (or the overview's) whose session ends `inMs` from now. */
  async function ticketEnding(inMs: number, viewed: string, clientId?: string): Promise<string> {
    const { ticket } = (await (await ticketFor(await signIn("viewer", [viewed]), clientId)).json()) as { ticket: string };
    await db().update(liveTickets).set({ sessionExpiresAt: Date.now() + inMs }).where(eq(liveTickets.hash, await sha256Hex(ticket)));
    return ticket;
  }

  it("closes a client's socket with 4401 instead of sending an update past the session's end", async () => {
    const { id, phones } = await createClient();
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live?ticket=${await ticketEnding(1_000, id, id)}`);
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    await withClockAhead(1_100, async () => {
      await ingestNow(phones[0]!, ["sent"]);
      expect(await ws.closed).toEqual({ code: SESSION_ENDED, reason: "session ended" });
    });
    expect(ws.seen).toHaveLength(1);
  });

  it("closes an overview socket with 4401 at the first broadcast past the session's end", async () => {
    const { id, phones } = await createClient();
    const ws = await LiveSocket.connect(`/v1/live?ticket=${await ticketEnding(1_000, id)}`);
    expect((await ws.next<{ type: string }>()).type).toBe("snapshot");
    await withClockAhead(1_100, async () => {
      await ingestNow(phones[0]!, ["sent"]);
      expect(await ws.closed).toEqual({ code: SESSION_ENDED, reason: "session ended" });
    });
  });

  it("closes the sockets of a session signed out since, at the object's next revocation check, and keeps the others", async () => {
    const { id, phones } = await createClient();
    const leaving = await signIn("viewer", [id]);
    const staying = await signIn("viewer", [id]);
    const gone = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${leaving}` });
    const kept = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${staying}` });
    expect((await gone.next<Msg>()).type).toBe("snapshot");
    expect((await kept.next<Msg>()).type).toBe("snapshot");
    expect((await postJson("/v1/auth/logout", {}, leaving)).status).toBe(200);
    // The object's first update to its viewers asks D1 about their sessions.
    await ingestNow(phones[0]!, ["sent"]);
    expect(await gone.closed).toEqual({ code: SESSION_ENDED, reason: "session ended" });
    expect((await kept.next<Msg>()).type).toBe("update");
    kept.close();
  });

  it("asks again while it sends: a session signed out after a check stops at the first update past REVOCATION_CHECK_MS", async () => {
    const { id, phones } = await createClient();
    const token = await signIn("viewer", [id]);
    const ws = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${token}` });
    expect((await ws.next<Msg>()).type).toBe("snapshot");
    await ingestNow(phones[0]!, ["sent"]);
    expect((await ws.next<Msg>()).type).toBe("update");
    expect((await postJson("/v1/auth/logout", {}, token)).status).toBe(200);
    await withClockAhead(REVOCATION_CHECK_MS + 200, async () => {
      await ingestNow(phones[0]!, ["delivered"]);
      expect(await ws.closed).toEqual({ code: SESSION_ENDED, reason: "session ended" });
    });
    expect(ws.seen).toHaveLength(2);
  });

  it("closes a viewer's socket once an admin takes the client away or resets its password, or the user is inactive, at the object's next check", async () => {
    const other = await createClient();
    const patch = (body: object) => async (userId: number) => expect((await postJson(`/v1/admin/users/${userId}`, body, await admin(), "PATCH")).status).toBe(200);
    // What reconnecting answers: the client is no longer the viewer's (403), the session is over (401).
    for (const [change, reconnect] of [
      [patch({ client_ids: [other.id] }), 403],
      [patch({ password: "a fresh passphrase" }), 401],
      // Made inactive by a path that leaves sessions_valid_from alone (a script, a future admin route).
      [async (userId: number) => void (await db().update(users).set({ active: false }).where(eq(users.id, userId))), 401],
    ] as const) {
      const { id, phones } = await createClient();
      const token = await signIn("viewer", [id]);
      const userId = ((await (await call("/v1/me", { headers: { authorization: `Bearer ${token}` } })).json()) as { user: { id: number } }).user.id;
      const staying = await signIn("viewer", [id]);
      const gone = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${token}` });
      const kept = await LiveSocket.connect(`/v1/clients/${id}/live`, { authorization: `Bearer ${staying}` });
      for (const ws of [gone, kept]) expect((await ws.next<{ type: string }>()).type).toBe("snapshot");
      await change(userId);
      // The object's first update to its viewers asks D1 about their sessions and access.
      await ingestNow(phones[0]!, ["sent"]);
      expect(await gone.closed).toEqual({ code: SESSION_ENDED, reason: "session ended" });
      // The update that found the check due waited for it: the viewer never saw the client again.
      expect(gone.seen).toHaveLength(1);
      expect((await kept.next<Msg>()).type).toBe("update");
      kept.close();
      // Reconnecting, the viewer gets what it may see now.
      expect((await LiveSocket.open(`/v1/clients/${id}/live`, { authorization: `Bearer ${token}` })) as Response).toMatchObject({ status: reconnect });
    }
  });

  it("refuses a ticket whose session ended before it was used", async () => {
    const { id } = await createClient();
    const res = (await LiveSocket.open(`/v1/clients/${id}/live?ticket=${await ticketEnding(-1, id, id)}`)) as Response;
    expect(res.status).toBe(401);
  });
});
