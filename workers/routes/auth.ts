import { and, eq } from "drizzle-orm";
import { Hono, type Context } from "hono";
import { getCookie } from "hono/cookie";
import { ChangePasswordRequest, LoginRequest, type LoginResponse, type PublicUser } from "../../schema/api.ts";
import { users } from "../../schema/db.ts";
import type { AppEnv } from "../app-env.ts";
import { audit } from "../audit.ts";
import { authenticate, clearSessionCookie, requireOwnOrigin, sessionToken, sessionUser, setSessionCookie } from "../auth/middleware.ts";
import { LoginThrottle, lockName, type ThrottleSubject } from "../auth/login-throttle.ts";
import { hashPassword, verifyPassword } from "../auth/password.ts";
import { issueDeviceToken, trustedDevice } from "../auth/trusted-device.ts";
import { sessionKeys } from "../auth/signing-keys.ts";
import { assertStrongPassword } from "../auth/strong-password.ts";
import type { AuthUser } from "../auth/policy.ts";
import { SESSION_COOKIE, issueSession, revokeSessionChain, sessionOf, userFromToken } from "../auth/session.ts";
import { ApiError, log } from "../errors.ts";
import { DEV_PASSWORD } from "../../schema/dev-credentials.ts";
import { isProduction } from "../security.ts";
import { valid } from "../validate.ts";

/** Mounted at /v1: sign-in, sign-out and who am I. */
export const auth = new Hono<AppEnv>();

function publicUser(u: AuthUser): PublicUser {
  return { id: u.id, email: u.email, role: u.role, client_ids: u.clientIds };
}

/**
 * Counts a password attempt on `account` (login-throttle.ts) and answers a locked caller 429: the
 * right password is refused too until the lock ends. A lock this attempt started goes to the audit
 * log, by the address that caused it: the trace of someone guessing, a few rows a minute at most.
 */
async function admitAttempt(c: Context<AppEnv>, account: string, subject: ThrottleSubject): Promise<LoginThrottle> {
  const db = c.get("db");
  const throttle = new LoginThrottle(db, subject, clientAddress(c));
  const { retryAfterS, locked } = await throttle.attempt();
  for (const kind of locked) {
    await audit(db, `address:${clientAddress(c)}`, "auth.locked", account, { lock: lockName(subject, kind), until: Date.now() + retryAfterS * 1000 });
  }
  if (retryAfterS > 0) {
    c.header("retry-after", String(retryAfterS));
    throw new ApiError(429, "too_many_attempts", `too many password attempts; try again in ${retryAfterS} s`, { retry_after_s: retryAfterS });
  }
  return throttle;
}

function clientAddress(c: Context<AppEnv>): string {
  return c.req.header("cf-connecting-ip") ?? "local";
}

/**
 * Verifying against a throwaway hash keeps unknown emails as slow as wrong passwords. The hash is
 * kept, not its promise: a request must not await a promise another request started (workers/auth/crypto.ts).
 */
let decoyHash: string | undefined;

// Signing a browser in sets its cookie: only our pages may (login CSRF), whatever the body says.
auth.post("/auth/login", async (c, next) => (requireOwnOrigin(c), next()), valid("json", LoginRequest), async (c) => {
  const { email, password, device_token } = c.req.valid("json");
  const db = c.get("db");
  // The session is dated when the password it rests on was read: a reset landing while this sign-in
  // checks the old one then ends this session too (session.ts, `sessions_valid_from`).
  const readAt = Date.now();
  const row = (await db.select().from(users).where(eq(users.email, email.toLowerCase())))[0];
  // A device is trusted only by an account that exists, and only since its sessions were last reset.
  const device = row ? await trustedDevice(sessionKeys(c.env), email, row.sessionsValidFrom, device_token) : undefined;
  const throttle = await admitAttempt(c, email.toLowerCase(), device ? { kind: "device", id: device.id } : { kind: "account", id: email });
  decoyHash ??= await hashPassword("decoy-password");
  const ok = await verifyPassword(password, row?.passwordHash ?? decoyHash);
  if (!row || !ok || !row.active) throw new ApiError(401, "invalid_credentials", "email or password is wrong");
  await throttle.succeeded();
  if (isProduction(c.env) && password === DEV_PASSWORD) {
    log("warn", c, "dev_password_refused", { user_id: row.id });
    throw new ApiError(403, "password_change_required", "the development password is not accepted in production");
  }

  const { token, id } = await issueSession(c.env.SESSION_SECRET, row.id, readAt);
  const user = await userFromToken(db, sessionKeys(c.env), token);
  if (!user) throw new ApiError(401, "invalid_credentials", "email or password is wrong");
  // Who signed in when, and as which session (its id revokes it); failures are counted by the throttle.
  await audit(db, user.email, "auth.login", user.email, { session: id });
  setSessionCookie(c, token);
  const deviceToken = device?.token ?? (await issueDeviceToken(c.env.SESSION_SECRET, email, row.sessionsValidFrom));
  return c.json({ token, user: publicUser(user), device_token: deviceToken } satisfies LoginResponse);
});

/**
 * Ends the caller's session. Without a live one (never signed in, expired, revoked, signed out in
 * another tab) there is nothing to end: the answer is the same and the cookie is cleared all the
 * same, so a sign-out button never fails.
 */
auth.post("/auth/logout", async (c) => {
  const cookie = getCookie(c, SESSION_COOKIE);
  const token = sessionToken(c.req.header("authorization"), cookie);
  if (token !== undefined && token === cookie) requireOwnOrigin(c);
  // A session already revoked is still followed to its replacements: a request of the same cookie may
  // have rotated it a moment ago, and its fresh cookie may reach the browser after this answer.
  const session = token ? await sessionOf(sessionKeys(c.env), token) : null;
  if (session) {
    const user = await sessionUser(c, token!);
    await revokeSessionChain(c.env.DB, session.sessionId, session.expiresAt);
    if (user) await audit(c.get("db"), user.email, "auth.logout", user.email, { session: user.sessionId });
  }
  clearSessionCookie(c);
  return c.json({ ok: true });
});

auth.get("/me", authenticate, (c) => c.json({ user: publicUser(c.get("user")) }));

/**
 * The signed-in user's new password. The current one is checked under a lockout of the session's own
 * (a stolen session must not become a way to guess it, or to take the account over without it; a
 * stranger locking the account's sign-in must not stop its owner from changing it). Every session
 * of the user ends (`sessions_valid_from`, as an admin's reset does: one left open elsewhere may be
 * the reason for the change) and this caller gets a fresh one, as a sign-in would.
 */
auth.post("/auth/password", authenticate, valid("json", ChangePasswordRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  const user = c.get("user");
  const [throttle, row] = await Promise.all([
    admitAttempt(c, user.email, { kind: "session", id: user.replacedBy ?? user.sessionId }),
    db.select().from(users).where(eq(users.id, user.id)).then((rows) => rows[0]),
  ]);
  if (!row || !(await verifyPassword(body.current_password, row.passwordHash))) {
    throw new ApiError(403, "invalid_current_password", "the current password is wrong");
  }
  await throttle.succeeded();
  await assertStrongPassword(body.new_password, user.email);
  const sessionsValidFrom = Date.now();
  // Written only over the row whose password was checked: an admin's reset (or a deactivation) landing
  // since then ended this session, and the password it set must stand, not the one this caller knew.
  const written = await db
    .update(users)
    .set({ passwordHash: await hashPassword(body.new_password), sessionsValidFrom })
    .where(and(eq(users.id, user.id), eq(users.passwordHash, row.passwordHash), eq(users.sessionsValidFrom, row.sessionsValidFrom)))
    .returning({ id: users.id });
  if (written.length === 0) throw new ApiError(401, "unauthenticated", "your sessions were ended while the password was being changed; sign in again");
  await audit(db, user.email, "user.password", user.email);
  // Dated when the new password was written, as a sign-in's is (session.ts): a reset landing after
  // the write ends this session too.
  const { token } = await issueSession(c.env.SESSION_SECRET, user.id, sessionsValidFrom);
  setSessionCookie(c, token);
  // The reset ended every device token of the account: this caller gets a fresh one, as a sign-in would.
  const deviceToken = await issueDeviceToken(c.env.SESSION_SECRET, user.email, sessionsValidFrom);
  return c.json({ token, user: publicUser(user), device_token: deviceToken } satisfies LoginResponse);
});
