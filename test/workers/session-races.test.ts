import { env } from "cloudflare:workers";
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { users } from "../../schema/db.ts";
import { hashPassword } from "../../workers/auth/password.ts";
import { issueSession } from "../../workers/auth/session.ts";
import { admin, authed, call, db, gatedDb, postJson, unique, withEnv } from "./helpers.ts";

async function userWith(password: string, role: "viewer" | "admin" = "viewer") {
  const email = `${unique("race")}@example.com`;
  const [u] = await db().insert(users).values({ email, passwordHash: await hashPassword(password), role, createdAt: Date.now() }).returning();
  return { id: u!.id, email };
}

const OLD = "old-Passw0rd-kestrel";
const NEW = "new-Passw0rd-osprey";

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
    const now = Math.floor(Date.now() / 1000);
    const old = await sign({ sub: String(id), jti: unique("jti"), iat: now - 5 * 3600, iat_ms: (now - 5 * 3600) * 1000, exp: now + 3 * 3600 }, env.SESSION_SECRET, "HS256");
    const { DB, reached, release } = gatedDb(/revoked_sessions/, true);
    const meReq = withEnv({ DB }, "/v1/me", { headers: { cookie: `zm_session=${old}` } });
    await reached;
    await adminReset(id);
    expect((await call("/v1/me", { headers: { cookie: `zm_session=${old}` } })).status).toBe(401);
    release();
    const res = await meReq;
    const fresh = res.headers.get("set-cookie")?.match(/zm_session=([^;]+)/)?.[1];
    expect(fresh).toBeDefined();
    expect((await call("/v1/me", { headers: { cookie: `zm_session=${fresh}` } })).status).toBe(401);
  });
});
