import { and, eq, gt } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { alias } from "drizzle-orm/sqlite-core";
import { sign, verify } from "hono/jwt";
import { revokedSessions, userClients, users } from "../../schema/db.ts";
import { randomToken } from "./crypto.ts";
import { accessGrant, type AuthUser } from "./policy.ts";
import { verifyWithKeys, type SigningKeys } from "./signing-keys.ts";

export const SESSION_COOKIE = "zm_session";
/**
 * Short-lived: a stolen token is worth little. A cookie session is replaced past half its life
 * (workers/auth/middleware.ts), so the dashboard stays signed in; a bearer token ends after this.
 */
export const SESSION_TTL_S = 8 * 3600;

/**
 * How long a cookie that a rotation replaced still authenticates. The browser may have sent requests
 * with it before the rotating request's answer brought the fresh cookie (a page's parallel calls, and
 * every dashboard at once after a SESSION_SECRET rotation); a 401 there signed the user out. A sign-out
 * of either cookie ends it at once, and a stolen cookie gains these seconds on the hours it had.
 */
export const ROTATED_SESSION_GRACE_MS = 30_000;

interface SessionClaims {
  sub: string;
  jti: string;
  exp: number;
  iat: number;
  /** The issue time in ms (`iat` is whole seconds): a session issued just after a password reset counts. */
  iat_ms?: number;
  [key: string]: unknown;
}

/** Issues a signed session token for `userId`; `id` is the session's id (its revocation key). */
export async function issueSession(secret: string, userId: number, now = Date.now()): Promise<{ token: string; id: string; expiresAt: number }> {
  const iat = Math.floor(now / 1000);
  const claims: SessionClaims = { sub: String(userId), jti: randomToken(16), iat, iat_ms: now, exp: iat + SESSION_TTL_S };
  return { token: await sign(claims, secret, "HS256"), id: claims.jti, expiresAt: claims.exp * 1000 };
}

/**
 * What an unexpired session token of ours says, whether or not it was revoked since; null for any
 * other. `byPreviousKey`: SESSION_SECRET_PREVIOUS signed it, during a rotation.
 */
export async function sessionOf(keys: SigningKeys, token: string): Promise<{ userId: number; sessionId: string; expiresAt: number; issuedAt: number; byPreviousKey: boolean } | null> {
  const verified = await verifyWithKeys(keys, (secret) => verify(token, secret, "HS256").catch(() => null));
  if (!verified) return null;
  const claims = verified.value as SessionClaims;
  const userId = Number(claims.sub);
  // hono's verify checks `exp` only when the token has one: a session without an end is not ours, nor
  // one longer than ours (minted with a leaked secret to outlive the next sign-in).
  if (!Number.isInteger(userId) || typeof claims.jti !== "string" || !Number.isSafeInteger(claims.exp) || !Number.isSafeInteger(claims.iat)) return null;
  if (claims.exp - claims.iat > SESSION_TTL_S) return null;
  // Tokens from before `iat_ms` (2026-12-01) are dated by their second; one whose `iat_ms` is not
  // within its `iat` second is not ours (it would outlive the password resets after its second).
  const issuedAt = Number.isSafeInteger(claims.iat_ms) ? claims.iat_ms! : claims.iat * 1000;
  if (Math.floor(issuedAt / 1000) !== claims.iat) return null;
  return { userId, sessionId: claims.jti, expiresAt: claims.exp * 1000, issuedAt, byPreviousKey: verified.byPreviousKey };
}

/** A session token's user, and whether the previous key of a rotation signed the token. */
export type SessionUser = AuthUser & { byPreviousKey: boolean };

/** The user behind a token, or null when it is forged, expired, revoked or the user is inactive. */
export async function userFromToken(db: DrizzleD1Database, keys: SigningKeys, token: string): Promise<SessionUser | null> {
  const session = await sessionOf(keys, token);
  if (!session) return null;
  const user = await activeUser(db, session.userId, session.sessionId, session.expiresAt, session.issuedAt);
  return user && { ...user, byPreviousKey: session.byPreviousKey };
}

/**
 * Ends session `sessionId` and the sessions cookie rotations replaced it with, one after another: a
 * sign-out sent with a cookie that a concurrent request has just rotated must end the fresh one too,
 * whose cookie may reach the browser after the sign-out cleared its own.
 */
export function revokeSessionChain(db: D1Database, sessionId: string, expiresAt: number): Promise<D1Result[]> {
  // A replacement was issued before the sign-out, so it ends within one session's life from now.
  const replacementsEnd = Date.now() + SESSION_TTL_S * 1000;
  return db.batch([
    db.prepare("INSERT INTO revoked_sessions (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING").bind(sessionId, expiresAt),
    db
      .prepare(
        `WITH RECURSIVE chain(jti) AS (
           SELECT replaced_by FROM revoked_sessions WHERE jti = ?1 AND replaced_by IS NOT NULL
           UNION SELECT r.replaced_by FROM revoked_sessions r JOIN chain ON r.jti = chain.jti WHERE r.replaced_by IS NOT NULL
         )
         INSERT INTO revoked_sessions (jti, expires_at) SELECT jti, ?2 FROM chain WHERE true ON CONFLICT DO NOTHING`,
      )
      .bind(sessionId, replacementsEnd),
  ]);
}

/** The session that replaced a revoked one, when it has been revoked too (signed out). */
const replacement = alias(revokedSessions, "replacement");

/**
 * A revoked session that still authenticates: replaced by a cookie rotation within the grace, and its
 * replacement not signed out since (a sign-out of the old cookie revokes the replacement too).
 */
function inRotationGrace(r: { replacedAt: number | null; replacementRevoked: string | null }, now: number): boolean {
  return r.replacedAt !== null && now - r.replacedAt < ROTATED_SESSION_GRACE_MS && r.replacementRevoked === null;
}

/**
 * User `userId` acting under session `sessionId` (its jti) with a credential issued at `issuedAt`
 * (ms: the session token, or a live ticket it asked for), or null when the session was revoked (past
 * a rotation's grace), the user is inactive, or the credential is older than the end of the user's
 * sessions (a password reset or a deactivation since).
 */
export async function activeUser(db: DrizzleD1Database, userId: number, sessionId: string, sessionExpiresAt: number, issuedAt: number): Promise<AuthUser | null> {
  const checkedAt = Date.now();
  const [[revoked], user, scopes] = await db.batch([
    db
      .select({ replacedAt: revokedSessions.replacedAt, replacedBy: revokedSessions.replacedBy, replacementRevoked: replacement.jti })
      .from(revokedSessions)
      .leftJoin(replacement, eq(replacement.jti, revokedSessions.replacedBy))
      .where(and(eq(revokedSessions.jti, sessionId), gt(revokedSessions.expiresAt, checkedAt))),
    db.select().from(users).where(eq(users.id, userId)),
    db.select({ clientId: userClients.clientId }).from(userClients).where(eq(userClients.userId, userId)),
  ]);
  const row = user[0];
  if ((revoked && !inRotationGrace(revoked, checkedAt)) || !row || !row.active || issuedAt < row.sessionsValidFrom) return null;
  const clientIds = scopes.map((s) => s.clientId);
  // Revoked and still here: a cookie in its rotation's grace, whose replacement is the live session.
  const replacedBy = revoked?.replacedBy;
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    clientIds,
    sessionId,
    sessionExpiresAt,
    ...(replacedBy != null && { replacedBy }),
    checkedAt,
    grant: await accessGrant(row.id, row.role, clientIds, row.sessionsValidFrom),
  };
}
