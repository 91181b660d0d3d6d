import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { LoginRequest, type PublicUser } from "../../schema/api.ts";
import { revokedSessions, users } from "../../schema/db.ts";
import type { AppEnv } from "../app-env.ts";
import { authenticate } from "../auth/middleware.ts";
import { hashPassword, verifyPassword } from "../auth/password.ts";
import type { AuthUser } from "../auth/policy.ts";
import { SESSION_COOKIE, SESSION_TTL_S, issueSession, userFromToken } from "../auth/session.ts";
import { ApiError } from "../errors.ts";
import { valid } from "../validate.ts";

/** Mounted at /v1: sign-in, sign-out and who am I. */
export const auth = new Hono<AppEnv>();

export function publicUser(u: AuthUser): PublicUser {
  return { id: u.id, email: u.email, role: u.role, client_ids: u.clientIds };
}

/** Verifying against a throwaway hash keeps unknown emails as slow as wrong passwords. */
let decoyHash: Promise<string> | undefined;

auth.post("/auth/login", valid("json", LoginRequest), async (c) => {
  const { email, password } = c.req.valid("json");
  const db = c.get("db");
  const row = (await db.select().from(users).where(eq(users.email, email.toLowerCase())))[0];
  decoyHash ??= hashPassword("decoy-password");
  const ok = await verifyPassword(password, row?.passwordHash ?? (await decoyHash));
  if (!row || !ok || !row.active) throw new ApiError(401, "invalid_credentials", "email or password is wrong");

  const { token } = await issueSession(c.env.SESSION_SECRET, row.id);
  const user = await userFromToken(db, c.env.SESSION_SECRET, token);
  if (!user) throw new ApiError(401, "invalid_credentials", "email or password is wrong");
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    path: "/",
    maxAge: SESSION_TTL_S,
  });
  return c.json({ token, user: publicUser(user) });
});

auth.post("/auth/logout", authenticate, async (c) => {
  const user = c.get("user");
  await c.get("db").insert(revokedSessions).values({ jti: user.sessionId, expiresAt: user.sessionExpiresAt }).onConflictDoNothing();
  deleteCookie(c, SESSION_COOKIE, { path: "/" });
  return c.json({ ok: true });
});

auth.get("/me", authenticate, (c) => c.json({ user: publicUser(c.get("user")) }));
