import { env } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { describe, expect, it, vi } from "vitest";
import { users } from "../../schema/db.ts";
import { ROTATED_SESSION_GRACE_MS, SESSION_COOKIE, SESSION_TTL_S, issueSession, sessionOf } from "../../workers/auth/session.ts";
import { authed, call, createClient, db, postJson, runCron, signIn, unique, withClockAhead, withEnv } from "./helpers.ts";

describe("sign in and out", () => {
  it("sets an HttpOnly SameSite=Strict session cookie and returns a bearer token", async () => {
    const token = await signIn("finance");
    const me = await call("/v1/me", authed(token));
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: { role: string } }).user.role).toBe("finance");

    const email = `${unique("cookie")}@example.com`;
    await postJson("/v1/admin/users", { email, password: "another long one", role: "viewer" }, await signIn("admin"));
    const login = await postJson("/v1/auth/login", { email, password: "another long one" });
    const cookie = login.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^zm_session=[^;]+;/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const viaCookie = await call("/v1/me", { headers: { cookie: cookie.split(";")[0]! } });
    expect(viaCookie.status).toBe(200);
  });

  it("refuses a wrong password and an unknown email alike", async () => {
    for (const body of [{ email: "admin@example.com", password: "wrong" }, { email: "nobody@example.com", password: "zapmeter-dev" }]) {
      const res = await postJson("/v1/auth/login", body);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_credentials");
    }
  });

  it("revokes the session on logout", async () => {
    const token = await signIn("viewer");
    expect((await call("/v1/auth/logout", authed(token, { method: "POST" }))).status).toBe(200);
    expect((await call("/v1/me", authed(token))).status).toBe(401);
  });

  it("records each sign-in and sign-out in the audit log, with its session, and no password", async () => {
    const email = `${unique("audited")}@example.com`;
    await postJson("/v1/admin/users", { email, password: "audited password", role: "viewer" }, await signIn("admin"));
    const { token } = (await (await postJson("/v1/auth/login", { email, password: "audited password" })).json()) as { token: string };
    expect((await postJson("/v1/auth/login", { email, password: "not the password" })).status).toBe(401);
    await call("/v1/auth/logout", authed(token, { method: "POST" }));
    const rows = await env.DB.prepare("SELECT actor, action, details FROM audit_log WHERE target = ? AND action LIKE 'auth.%' ORDER BY id").bind(email).all<{ actor: string; action: string; details: string }>();
    expect(rows.results.map((r) => [r.actor, r.action])).toEqual([[email, "auth.login"], [email, "auth.logout"]]);
    const sessions = rows.results.map((r) => (JSON.parse(r.details) as { session: string }).session);
    expect(sessions[0]).toBe(sessions[1]);
    expect(rows.results.map((r) => r.details).join()).not.toContain("password");
  });

  it("signs out without a live session too, clearing the cookie", async () => {
    const revoked = await signIn("viewer");
    await call("/v1/auth/logout", authed(revoked, { method: "POST" }));
    for (const init of [{}, { headers: { cookie: `zm_session=${revoked}` } }, authed("garbage")]) {
      const res = await call("/v1/auth/logout", { ...init, method: "POST" });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
      const cleared = res.headers.get("set-cookie")!;
      expect(cleared).toMatch(/^zm_session=;.*Max-Age=0/);
      // Cleared with the attributes it was set with.
      expect(cleared).toMatch(/HttpOnly/);
      expect(cleared).toMatch(/SameSite=Strict/);
    }
  });

  it("refuses tampered, foreign-signed and expired tokens", async () => {
    const token = await signIn("viewer");
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(atob(p!.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    const forged = `${h}.${btoa(JSON.stringify({ ...claims, sub: "1" })).replace(/=+$/, "")}.${s}`;
    const foreign = await sign({ ...claims }, "not-our-secret", "HS256");
    const expired = await sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 }, env.SESSION_SECRET, "HS256");
    const { exp: _, ...endless } = claims;
    const withoutEnd = await sign(endless, env.SESSION_SECRET, "HS256");
    const longer = await sign({ ...claims, exp: (claims.iat as number) + SESSION_TTL_S + 1 }, env.SESSION_SECRET, "HS256");
    // Issued "later" than its own iat, it would outlive the password resets after it.
    const postdated = await sign({ ...claims, iat_ms: (claims.iat as number) * 1000 + 10 ** 12 }, env.SESSION_SECRET, "HS256");
    for (const t of [forged, foreign, expired, withoutEnd, longer, postdated, "garbage"]) expect((await call("/v1/me", authed(t))).status).toBe(401);
    const asIssued = await sign({ ...claims, exp: (claims.iat as number) + SESSION_TTL_S }, env.SESSION_SECRET, "HS256");
    expect((await call("/v1/me", authed(asIssued))).status).toBe(200);
  });
});

describe("rotating SESSION_SECRET", () => {
  const NEW_SECRET = "the-new-session-secret-0123456789";
  /** The suite's secret is the previous one while the rotation is under way, and deleted after it. */
  const rotating = { SESSION_SECRET: NEW_SECRET, SESSION_SECRET_PREVIOUS: env.SESSION_SECRET };
  const rotated = { SESSION_SECRET: NEW_SECRET };
  const withCookie = (token: string, init: RequestInit = {}): RequestInit => ({ ...init, headers: { cookie: `${SESSION_COOKIE}=${token}` } });
  const freshCookie = (res: Response) => res.headers.get("set-cookie")?.match(/zm_session=([^;]+)/)?.[1];
  async function viewer(): Promise<number> {
    const [u] = await db().insert(users).values({ email: `${unique("rotation")}@example.com`, passwordHash: "unusable", role: "viewer", createdAt: Date.now() }).returning();
    return u!.id;
  }

  it("accepts a bearer session of the previous key while it is set, as it is, and refuses it once deleted and one of a third key", async () => {
    const id = await viewer();
    const old = (await issueSession(env.SESSION_SECRET, id)).token;
    for (let i = 0; i < 2; i++) {
      const res = await withEnv(rotating, "/v1/me", authed(old));
      expect([res.status, res.headers.get("set-cookie")]).toEqual([200, null]);
    }
    expect((await withEnv(rotating, "/v1/me", authed((await issueSession(NEW_SECRET, id)).token))).status).toBe(200);
    expect((await withEnv(rotated, "/v1/me", authed(old))).status).toBe(401);
    const third = (await issueSession("a-third-session-secret-0123456789", id)).token;
    expect((await withEnv(rotating, "/v1/me", authed(third))).status).toBe(401);
  });

  it("re-issues a cookie session of the previous key with the current key at its next request, however young, and revokes the old one", async () => {
    const id = await viewer();
    const old = (await issueSession(env.SESSION_SECRET, id)).token;
    const res = await withEnv(rotating, "/v1/me", withCookie(old));
    expect(res.status).toBe(200);
    const fresh = freshCookie(res)!;
    // The current key alone verifies it: the session outlives the previous key.
    expect(await sessionOf({ current: NEW_SECRET }, fresh)).toMatchObject({ userId: id, byPreviousKey: false });
    expect((await withEnv(rotated, "/v1/me", withCookie(fresh))).status).toBe(200);
    const late = await withClockAhead(ROTATED_SESSION_GRACE_MS, () => withEnv(rotating, "/v1/me", withCookie(old)));
    expect(late.status).toBe(401);
  });

  it("signs out a session of the previous key, and the one its cookie was re-issued as", async () => {
    const id = await viewer();
    const me = async (init: RequestInit) => (await withEnv(rotating, "/v1/me", init)).status;
    const bearer = (await issueSession(env.SESSION_SECRET, id)).token;
    expect(await me(authed(bearer))).toBe(200);
    expect((await withEnv(rotating, "/v1/auth/logout", authed(bearer, { method: "POST" }))).status).toBe(200);
    expect(await me(authed(bearer))).toBe(401);

    const old = (await issueSession(env.SESSION_SECRET, id)).token;
    const fresh = freshCookie(await withEnv(rotating, "/v1/me", withCookie(old)))!;
    expect(await me(withCookie(fresh))).toBe(200);
    // The old cookie's sign-out (sent by a tab that had not seen the fresh one yet) ends the fresh session too.
    expect((await withEnv(rotating, "/v1/auth/logout", withCookie(old, { method: "POST" }))).status).toBe(200);
    expect(await me(withCookie(fresh))).toBe(401);
  });
});

describe("changing one's own password", () => {
  async function userWithPassword(password: string): Promise<{ email: string; token: string }> {
    const email = `${unique("own-password")}@example.com`;
    expect((await postJson("/v1/admin/users", { email, password, role: "viewer" }, await signIn("admin"))).status).toBe(201);
    const login = await postJson("/v1/auth/login", { email, password });
    return { email, token: ((await login.json()) as { token: string }).token };
  }
  const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it("takes the new password, ends the user's other sessions and hands this caller a fresh one", async () => {
    const { email, token } = await userWithPassword("first password");
    const elsewhere = ((await (await postJson("/v1/auth/login", { email, password: "first password" })).json()) as { token: string }).token;

    const res = await postJson("/v1/auth/password", { current_password: "first password", new_password: "second password" }, token);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; user: { email: string } };
    expect(body.user.email).toBe(email);
    expect(res.headers.get("set-cookie")).toMatch(/^zm_session=[^;]+;.*HttpOnly/);

    expect((await call("/v1/me", authed(body.token))).status).toBe(200);
    for (const old of [token, elsewhere]) expect((await call("/v1/me", authed(old))).status).toBe(401);
    expect((await postJson("/v1/auth/login", { email, password: "first password" })).status).toBe(401);
    expect((await postJson("/v1/auth/login", { email, password: "second password" })).status).toBe(200);
  });

  it("refuses a wrong current password (403, the session stays), a short or unchanged new one (400), and no session (401)", async () => {
    const { token } = await userWithPassword("kept password");
    const wrong = await postJson("/v1/auth/password", { current_password: "not it at all", new_password: "whatever long" }, token);
    expect([wrong.status, await errorCode(wrong)]).toEqual([403, "invalid_current_password"]);
    for (const body of [
      { current_password: "kept password", new_password: "short" },
      { current_password: "kept password", new_password: "kept password" },
      { current_password: "kept password" },
    ]) {
      const res = await postJson("/v1/auth/password", body, token);
      expect([res.status, await errorCode(res)]).toEqual([400, "validation_failed"]);
    }
    expect((await call("/v1/me", authed(token))).status).toBe(200);
    const common = await postJson("/v1/auth/password", { current_password: "kept password", new_password: "password1" }, token);
    expect([common.status, await errorCode(common)]).toEqual([400, "weak_password"]);
    const anonymous = await postJson("/v1/auth/password", { current_password: "kept password", new_password: "another long one" });
    expect(anonymous.status).toBe(401);
  });

  it("counts the fresh session even when issued in the change's own millisecond, and none issued a millisecond before", async () => {
    const { token } = await userWithPassword("first password");
    const userId = ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
    const at = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(at);
    let res: Response;
    try {
      res = await postJson("/v1/auth/password", { current_password: "first password", new_password: "second password" }, token);
    } finally {
      vi.restoreAllMocks();
    }
    expect((await call("/v1/me", authed(((await res.json()) as { token: string }).token))).status).toBe(200);
    const justBefore = await issueSession(env.SESSION_SECRET, userId, at - 1);
    expect((await call("/v1/me", authed(justBefore.token))).status).toBe(401);
  });

  it("takes a right current password's attempt back, even when the new password is refused", async () => {
    const { token } = await userWithPassword("right password");
    for (let i = 0; i < 9; i++) expect((await postJson("/v1/auth/password", { current_password: `guess number ${i}`, new_password: "whatever long" }, token)).status).toBe(403);
    const weak = await postJson("/v1/auth/password", { current_password: "right password", new_password: "password1" }, token);
    expect([weak.status, await errorCode(weak)]).toEqual([400, "weak_password"]);
    expect((await postJson("/v1/auth/password", { current_password: "right password", new_password: "a strong new one" }, token)).status).toBe(200);
  });

  it("locks a session's password changes after 10 wrong current passwords, not the account's sign-in", async () => {
    const { email, token } = await userWithPassword("guarded password");
    const guesses = await Promise.all(
      Array.from({ length: 12 }, (_, i) => postJson("/v1/auth/password", { current_password: `guess number ${i}`, new_password: "taken over!" }, token)),
    );
    expect(guesses.filter((r) => r.status === 403).length).toBeLessThanOrEqual(10);
    expect(guesses.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(2);
    expect(guesses.every((r) => r.status === 403 || r.status === 429)).toBe(true);
    const right = await postJson("/v1/auth/password", { current_password: "guarded password", new_password: "taken over!" }, token);
    expect(right.status).toBe(429);
    const login = await postJson("/v1/auth/login", { email, password: "guarded password" });
    expect(login.status).toBe(200);
  });
});

describe("read routes are scoped", () => {
  it("lists only a viewer's own clients, with today's totals", async () => {
    const a = await createClient();
    await createClient();
    const viewer = await signIn("viewer", [a.id]);
    const res = await call("/v1/clients", authed(viewer));
    const body = (await res.json()) as { clients: { client_id: string; id: string; today: Record<string, number> }[] };
    expect(body.clients.map((c) => [c.client_id, c.id])).toEqual([[a.id, a.id]]);
    expect(body.clients[0]!.today).toEqual({ accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 });
  });

  it("lets a viewer read counters of its client only (403 for another, 404 for none)", async () => {
    const a = await createClient();
    const b = await createClient();
    const viewer = await signIn("viewer", [a.id]);
    const q = "from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z";
    expect((await call(`/v1/clients/${a.id}/counters?${q}`, authed(viewer))).status).toBe(200);
    expect((await call(`/v1/clients/${b.id}/counters?${q}`, authed(viewer))).status).toBe(403);
    expect((await call(`/v1/clients/${b.id}/counters?${q}`)).status).toBe(401);
    expect((await call(`/v1/clients/ghost/counters?${q}`, authed(await signIn("admin")))).status).toBe(404);
  });

  it("validates the counters range", async () => {
    const a = await createClient();
    const token = await signIn("admin");
    for (const q of ["", "from=yesterday&to=today", "from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z", "from=2026-01-01T00:00:00Z&to=2026-11-20T00:00:00Z"]) {
      const res = await call(`/v1/clients/${a.id}/counters?${q}`, authed(token));
      expect(res.status).toBe(400);
    }
  });
});

describe("housekeeping", () => {
  it("purges expired revocations, tickets and sign-in failures in the daily cron, keeping live ones", async () => {
    const now = Date.now();
    await env.DB.batch([
      env.DB.prepare("INSERT INTO revoked_sessions (jti, expires_at) VALUES (?, ?), (?, ?)").bind("old-jti", now - 1000, "live-jti", now + 3_600_000),
      env.DB.prepare("INSERT INTO live_tickets (hash, user_id, client_id, expires_at) VALUES (?, 1, NULL, ?), (?, 1, NULL, ?)").bind("old-t", now - 1000, "live-t", now + 60_000),
      env.DB.prepare("INSERT INTO login_failures (key, window_start, failures, locked_until) VALUES (?, ?, 3, 0), (?, ?, 3, 0), (?, ?, 10, ?)").bind(
        "email:old", now - 120_000, "email:counting", now - 10_000, "email:locked", now - 90_000, now + 30_000,
      ),
    ]);
    await runCron("30 3 * * *", now);
    const jtis = await env.DB.prepare("SELECT jti FROM revoked_sessions WHERE jti IN ('old-jti', 'live-jti')").all<{ jti: string }>();
    const tickets = await env.DB.prepare("SELECT hash FROM live_tickets WHERE hash IN ('old-t', 'live-t')").all<{ hash: string }>();
    const failures = await env.DB.prepare("SELECT key FROM login_failures WHERE key IN ('email:old', 'email:counting', 'email:locked') ORDER BY key").all<{ key: string }>();
    expect(jtis.results.map((r) => r.jti)).toEqual(["live-jti"]);
    expect(tickets.results.map((r) => r.hash)).toEqual(["live-t"]);
    expect(failures.results.map((r) => r.key)).toEqual(["email:counting", "email:locked"]);
  });

  it("purges at most 200,000 rows a night, in statements of 5,000, and names the table it left rows in", async () => {
    const now = Date.now();
    await runCron("30 3 * * *", now); // what the file's other tests left expired
    await env.DB.prepare("INSERT INTO revoked_sessions (jti, expires_at) VALUES ('flood-jti', ?)").bind(now - 1000).run();
    // A flood of sign-in failures: 200,001 keys past their window, and one still counting.
    await env.DB.prepare(
      `INSERT INTO login_failures (key, window_start, failures, locked_until)
       WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200001)
       SELECT 'email:flood-' || i, ?1, 3, 0 FROM n UNION ALL SELECT 'email:flood-counting', ?2, 3, 0`,
    ).bind(now - 120_000, now - 10_000).run();
    const statements = vi.spyOn(env.DB, "prepare");
    const logged = vi.spyOn(console, "warn");
    try {
      await runCron("30 3 * * *", now);
      const purges = statements.mock.calls.filter(([q]) => /^delete from "login_failures"/.test(q));
      expect(purges.length).toBe(40);
      const line = logged.mock.calls.map(([l]) => JSON.parse(String(l)) as { event: string }).find((l) => l.event === "credentials_purged");
      expect(line).toEqual({ level: "warn", event: "credentials_purged", deleted: { revoked_sessions: 1, live_tickets: 0, login_failures: 199_999 }, left: ["login_failures"] });
    } finally {
      statements.mockRestore();
      logged.mockRestore();
    }
    const count = async () => (await env.DB.prepare("SELECT count(*) AS n FROM login_failures WHERE key LIKE 'email:flood-%'").first<{ n: number }>())!.n;
    expect(await count()).toBe(3);

    // The next run takes the rest, and says so as news, not as a warning.
    const info = vi.spyOn(console, "info");
    try {
      await runCron("30 3 * * *", now);
      const line = info.mock.calls.map(([l]) => JSON.parse(String(l)) as { event: string }).find((l) => l.event === "credentials_purged");
      expect(line).toEqual({ level: "info", event: "credentials_purged", deleted: { revoked_sessions: 0, live_tickets: 0, login_failures: 2 } });
    } finally {
      info.mockRestore();
    }
    expect(await count()).toBe(1);
  });
});
