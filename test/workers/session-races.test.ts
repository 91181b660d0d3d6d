import { env } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { users } from "../../schema/db.ts";
import { hashPassword } from "../../workers/auth/password.ts";
import { issueSession, ROTATED_SESSION_GRACE_MS } from "../../workers/auth/session.ts";
import { admin, authed, BASE, call, db, gatedDb, postJson, unique, withClock, withClockAhead, withEnv, withMethods } from "./helpers.ts";

async function userWith(password: string, role: "viewer" | "admin" = "viewer") {
  const email = `${unique("race")}@example.com`;
  const [u] = await db().insert(users).values({ email, passwordHash: await hashPassword(password), role, createdAt: Date.now() }).returning();
  return { id: u!.id, email };
}

const OLD = "old-Passw0rd-kestrel";
const NEW = "new-Passw0rd-osprey";
const MINE = "mine-Passw0rd-heron";

/** A session cookie past half its life, which the next request it authenticates rotates. */
async function oldCookie(id: number): Promise<{ cookie: string }> {
  const now = Math.floor(Date.now() / 1000);
  const token = await sign({ sub: String(id), jti: unique("jti"), iat: now - 5 * 3600, iat_ms: (now - 5 * 3600) * 1000, exp: now + 3 * 3600 }, env.SESSION_SECRET, "HS256");
  return { cookie: `zm_session=${token}` };
}

/**
 * How many wrong current passwords the password change checks (403) when each cookie tries 11, each
 * from an address of its own so that only the lockouts keyed by session can stop them.
 */
async function passwordGuessesChecked(cookies: string[]): Promise<number> {
  let checked = 0;
  for (const [i, cookie] of cookies.entries()) {
    for (let g = 0; g < 11; g++) {
      const res = await call("/v1/auth/password", {
        method: "POST",
        headers: { cookie, origin: BASE, "content-type": "application/json", "cf-connecting-ip": `198.51.100.${i + 1}` },
        body: JSON.stringify({ current_password: `guess ${i} ${g}`, new_password: "another long Passw0rd" }),
      });
      if (res.status === 403) checked++;
    }
  }
  return checked;
}

const freshCookieOf = (res: Response) => res.headers.get("set-cookie")?.match(/zm_session=([^;]+)/)?.[1];

async function adminReset(id: number) {
  const res = await postJson(`/v1/admin/users/${id}`, { password: NEW }, await admin(), "PATCH");
  expect(res.status).toBe(200);
}

describe("credentials minted across a password reset", () => {
  it("a sign-in with the old password that completes after an admin's reset must not yield a working session", async () => {
    const { id, email } = await userWith(OLD);
    // Hold the sign-in after it read the user's row (its throttle batch), reset meanwhile.
    const { DB, reached, release } = gatedDb(/login_failures/);
    const login = withEnv({ DB }, "/v1/auth/login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password: OLD }) });
    await reached;
    await adminReset(id);
    // After the reset, the old password is refused.
    expect((await postJson("/v1/auth/login", { email, password: OLD })).status).toBe(401);
    release();
    const res = await login;
    const token = res.status === 200 ? ((await res.json()) as { token: string }).token : undefined;
    const me = token ? (await call("/v1/me", authed(token))).status : res.status;
    // Expected: the in-flight sign-in is refused, or its session does not work.
    expect({ login: res.status, me }).not.toMatchObject({ login: 200, me: 200 });
  });

  it("a live ticket asked for by a session the reset ended must not open a socket", async () => {
    const { id } = await userWith(OLD, "viewer");
    const old = await issueSession(env.SESSION_SECRET, id);
    // Hold the ticket request after it authenticated the (still valid) session.
    const { DB, reached, release } = gatedDb(/revoked_sessions/, true);
    const ticketReq = withEnv({ DB }, "/v1/live/ticket", authed(old.token, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }));
    await reached;
    await adminReset(id);
    expect((await call("/v1/me", authed(old.token))).status).toBe(401);
    release();
    const res = await ticketReq;
    expect(res.status).toBe(200);
    const { ticket } = (await res.json()) as { ticket: string };
    const ws = await call(`/v1/live?ticket=${ticket}`, { headers: { upgrade: "websocket" } });
    if (ws.webSocket) {
      ws.webSocket.accept();
      ws.webSocket.close(1000, "done");
    }
    expect(ws.status).toBe(401);
  });

  it("a cookie rotated by a request that authenticated just before a reset must not outlive the reset", async () => {
    const { id } = await userWith(OLD, "viewer");
    const old = await oldCookie(id);
    const { DB, reached, release } = gatedDb(/revoked_sessions/, true);
    const meReq = withEnv({ DB }, "/v1/me", { headers: old });
    await reached;
    await adminReset(id);
    expect((await call("/v1/me", { headers: old })).status).toBe(401);
    release();
    const fresh = freshCookieOf(await meReq);
    expect(fresh).toBeDefined();
    expect((await call("/v1/me", { headers: { cookie: `zm_session=${fresh}` } })).status).toBe(401);
  });
});

describe("a user's own password change racing an admin's reset", () => {
  const changePassword = (DB: D1Database, token: string) =>
    withEnv({ DB }, "/v1/auth/password", authed(token, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ current_password: OLD, new_password: MINE }) }));

  it("does not write over a reset that landed after it checked the current password", async () => {
    const { id, email } = await userWith(OLD);
    const { token } = await issueSession(env.SESSION_SECRET, id);
    // Hold the change after it checked the current password (its throttle's success batch), reset meanwhile.
    const { DB, reached, release } = gatedDb(/delete from "login_failures"/);
    const change = changePassword(DB, token);
    await reached;
    await adminReset(id);
    release();
    const res = await change;
    // The admin's password is the account's; the one set by a session the reset ended is not.
    const withReset = (await postJson("/v1/auth/login", { email, password: NEW })).status;
    const withMine = (await postJson("/v1/auth/login", { email, password: MINE })).status;
    expect({ change: res.status, withReset, withMine }).toEqual({ change: 401, withReset: 200, withMine: 401 });
  });

  it("does not write over a deactivation that landed after it checked the current password", async () => {
    const { id, email } = await userWith(OLD);
    const { token } = await issueSession(env.SESSION_SECRET, id);
    const { DB, reached, release } = gatedDb(/delete from "login_failures"/);
    const change = changePassword(DB, token);
    await reached;
    expect((await postJson(`/v1/admin/users/${id}`, { active: false }, await admin(), "PATCH")).status).toBe(200);
    release();
    const res = await change;
    // Reactivated, the account still takes the password it had: the deactivation ended the change's session.
    expect((await postJson(`/v1/admin/users/${id}`, { active: true }, await admin(), "PATCH")).status).toBe(200);
    const withOld = (await postJson("/v1/auth/login", { email, password: OLD })).status;
    const withMine = (await postJson("/v1/auth/login", { email, password: MINE })).status;
    expect({ change: res.status, withOld, withMine }).toEqual({ change: 401, withOld: 200, withMine: 401 });
  });

  it("hands out no session that outlives a reset landing after the change was written", async () => {
    const { id } = await userWith(OLD);
    const { token } = await issueSession(env.SESSION_SECRET, id);
    // Hold the change at its audit line (after its write, before it mints the fresh session).
    let reachedResolve!: () => void;
    const reached = new Promise<void>((r) => (reachedResolve = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const DB = withMethods(env.DB, {
      prepare: (query: string) => {
        const statement = env.DB.prepare(query);
        if (!/insert into "audit_log"/.test(query)) return statement;
        return withMethods(statement, {
          bind: (...values: unknown[]) => {
            const bound = statement.bind(...values);
            if (!values.includes("user.password")) return bound;
            return withMethods(bound, { run: async <T,>() => (reachedResolve(), await gate, bound.run<T>()) });
          },
        });
      },
    });
    const change = changePassword(DB, token);
    await reached;
    await adminReset(id);
    release();
    const res = await change;
    expect(res.status).toBe(200);
    const fresh = ((await res.json()) as { token: string }).token;
    expect((await call("/v1/me", authed(fresh))).status).toBe(401);
  });
});

describe("an admin's reset racing the user's own password change", () => {
  it("ends the session the user's change handed out though that change was written after the reset read its clock", async () => {
    const { id, email } = await userWith(OLD);
    const { token } = await issueSession(env.SESSION_SECRET, id);
    // Hold the reset's write: it has read its clock; the user's change goes through meanwhile.
    const { DB, reached, release } = gatedDb(/^update "users"/);
    const reset = withEnv({ DB }, `/v1/admin/users/${id}`, authed(await admin(), { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ password: NEW }) }));
    await reached;
    const change = await call("/v1/auth/password", authed(token, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ current_password: OLD, new_password: MINE }) }));
    expect(change.status).toBe(200);
    const fresh = ((await change.json()) as { token: string }).token;
    release();
    expect((await reset).status).toBe(200);
    // The reset is the last word: its password signs in, and no session from before it works.
    expect((await postJson("/v1/auth/login", { email, password: NEW })).status).toBe(200);
    expect((await call("/v1/me", authed(fresh))).status).toBe(401);
  });
});

describe("a cookie session past half its life", () => {
  it("sent by two requests at once is rotated into one fresh session, not one per request (each with a password-change lockout of its own)", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    // The first request has authenticated the old cookie; the second rotates it meanwhile.
    const { DB, reached, release } = gatedDb(/revoked_sessions/, true);
    const first = withEnv({ DB }, "/v1/me", { headers: old });
    await reached;
    const second = await call("/v1/me", { headers: old });
    release();
    const answers = [await first, second];
    const working: string[] = [];
    for (const t of answers.map(freshCookieOf)) if (t !== undefined && (await call("/v1/me", { headers: { cookie: `zm_session=${t}` } })).status === 200) working.push(t);
    // Each working session may check 10 guesses of the current password before its own lock.
    const checked = await passwordGuessesChecked(working.map((t) => `zm_session=${t}`));
    expect({ statuses: answers.map((r) => r.status), sessions: working.length, guessesChecked: checked }).toEqual({ statuses: [200, 200], sessions: 1, guessesChecked: 10 });
  });

  it("rotated by one request still answers the requests the browser sent with it before the fresh cookie came, for a grace", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    const rotatedAt = Date.now();
    const at = (ms: number, init: RequestInit) => withClock(() => rotatedAt + ms, () => call("/v1/me", init));
    const fresh = freshCookieOf(await at(0, { headers: old }));
    expect(fresh).toBeDefined();
    // A page's other call, sent with the old cookie, arrives after the rotation: it is not a stolen cookie's.
    const late = await at(ROTATED_SESSION_GRACE_MS - 1, { headers: old });
    expect([late.status, late.headers.get("set-cookie")]).toEqual([200, null]);
    expect((await at(ROTATED_SESSION_GRACE_MS, { headers: old })).status).toBe(401);
    expect((await at(ROTATED_SESSION_GRACE_MS, { headers: { cookie: `zm_session=${fresh}` } })).status).toBe(200);
  });

  it("rotated, its old cookie's guesses in the grace count against the fresh session's password-change lockout, not one of its own", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    // A stolen cookie: the thief's own request rotates it, and both cookies then guess within one window.
    const fresh = freshCookieOf(await call("/v1/me", { headers: old }));
    expect(fresh).toBeDefined();
    expect(await passwordGuessesChecked([old.cookie, `zm_session=${fresh}`])).toBe(10);
  });

  it("rotated and then signed out with the fresh cookie ends the old cookie's grace too", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    const fresh = freshCookieOf(await call("/v1/me", { headers: old }));
    expect((await call("/v1/auth/logout", { method: "POST", headers: { cookie: `zm_session=${fresh}`, origin: BASE } })).status).toBe(200);
    expect((await call("/v1/me", { headers: old })).status).toBe(401);
  });

  it("rotated by a request just before the user signs out with the old cookie ends with the sign-out too", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    // A dashboard poll rotated the cookie; the sign-out, sent meanwhile, still carries the old one.
    const fresh = freshCookieOf(await call("/v1/me", { headers: old }));
    expect(fresh).toBeDefined();
    const out = await call("/v1/auth/logout", { method: "POST", headers: { ...old, origin: BASE } });
    expect(out.status).toBe(200);
    // The poll's answer may reach the browser after the sign-out's: its cookie must not sign it back in,
    // nor may the old cookie's grace outlive the sign-out.
    expect((await call("/v1/me", { headers: { cookie: `zm_session=${fresh}` } })).status).toBe(401);
    expect((await call("/v1/me", { headers: old })).status).toBe(401);
  });

  it("rotated just before a sign-out with the old cookie stays ended past the old cookie's own end", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    const fresh = freshCookieOf(await call("/v1/me", { headers: old }));
    expect(fresh).toBeDefined();
    expect((await call("/v1/auth/logout", { method: "POST", headers: { ...old, origin: BASE } })).status).toBe(200);
    // Four hours on, the old cookie (3 h left) has ended by itself; the fresh one (8 h) has not.
    const later = await withClockAhead(4 * 3600_000, () => call("/v1/me", { headers: { cookie: `zm_session=${fresh}` } }));
    expect(later.status).toBe(401);
  });

  it("rotated by a request while the user signs out leaves no fresh session behind the sign-out", async () => {
    const { id } = await userWith("the real Passw0rd");
    const old = await oldCookie(id);
    // A dashboard poll has authenticated the cookie; the user signs out meanwhile.
    const { DB, reached, release } = gatedDb(/revoked_sessions/, true);
    const poll = withEnv({ DB }, "/v1/me", { headers: old });
    await reached;
    const out = await call("/v1/auth/logout", { method: "POST", headers: { ...old, origin: BASE } });
    expect(out.status).toBe(200);
    release();
    const fresh = freshCookieOf(await poll);
    const after = fresh === undefined ? 401 : (await call("/v1/me", { headers: { cookie: `zm_session=${fresh}` } })).status;
    expect(after).toBe(401);
  });
});
