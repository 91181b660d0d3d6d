import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { revokedSessions } from "../../schema/db.ts";
import type { AppEnv } from "../app-env.ts";
import { dashboardOrigins } from "../cors.ts";
import { ApiError, storeCall } from "../errors.ts";
import { bearerToken } from "./api-keys.ts";
import type { Capability } from "../../schema/api.ts";
import { allows, type AuthUser } from "./policy.ts";
import { SESSION_COOKIE, SESSION_TTL_S, issueSession, userFromToken, type SessionUser } from "./session.ts";
import { sessionKeys } from "./signing-keys.ts";

/** HttpOnly, SameSite=Strict, Secure outside plain-http localhost: the same when set and when cleared. */
const sessionCookieOptions = (c: Context<AppEnv>) =>
  ({ httpOnly: true, sameSite: "Strict", secure: new URL(c.req.url).protocol === "https:", path: "/" }) as const;

export function setSessionCookie(c: Context<AppEnv>, token: string): void {
  setCookie(c, SESSION_COOKIE, token, { ...sessionCookieOptions(c), maxAge: SESSION_TTL_S });
}

export function clearSessionCookie(c: Context<AppEnv>): void {
  deleteCookie(c, SESSION_COOKIE, sessionCookieOptions(c));
}

/**
 * A cookie session past half its life is replaced by a fresh one and the old id revoked, so an active
 * dashboard stays signed in while a stolen cookie ages out. So is one signed with the previous key of
 * a rotation, at once: active dashboards move to the current key within minutes, not hours, and
 * keep their sessions when the previous key is deleted. The request goes on as the fresh session (a
 * live ticket it issues belongs to that one).
 */
async function rotateIfOld(c: Context<AppEnv>, user: SessionUser): Promise<AuthUser> {
  // In its rotation's grace the session is replaced already: its revocation row stands, so a fresh
  // one would be signed and thrown away.
  if (user.replacedBy !== undefined) return user;
  if (!user.byPreviousKey && user.sessionExpiresAt - Date.now() > (SESSION_TTL_S * 1000) / 2) return user;
  const fresh = await issueSession(c.env.SESSION_SECRET, user.id, user.checkedAt);
  // The old id names its replacement, so that a sign-out with the old cookie ends it too (`revokeSessionChain`).
  const [revoked] = await c
    .get("db")
    .insert(revokedSessions)
    .values({ jti: user.sessionId, expiresAt: user.sessionExpiresAt, replacedBy: fresh.id, replacedAt: Date.now() })
    .onConflictDoNothing()
    .returning({ jti: revokedSessions.jti });
  // Only the request that revoked the old id replaces it: one per request of a burst would turn one
  // cookie (a stolen one) into many sessions, each with its own password-change lockout. The others,
  // and those the old cookie sends within the grace (ROTATED_SESSION_GRACE_MS), go on as the session
  // they authenticated; the browser keeps the fresh cookie the first one set.
  if (!revoked) return user;
  setSessionCookie(c, fresh.token);
  return { ...user, sessionId: fresh.id, sessionExpiresAt: fresh.expiresAt };
}

/** The session token from `Authorization: Bearer` or the session cookie. */
export function sessionToken(authorization: string | undefined, cookie: string | undefined): string | undefined {
  return bearerToken(authorization) ?? cookie;
}

/** The user of a session token: null when it is invalid, expired or revoked. */
export async function sessionUser(c: Context<AppEnv>, token: string): Promise<SessionUser | null> {
  return storeCall(userFromToken(c.get("db"), sessionKeys(c.env), token), "session_store_unavailable", "could not verify the session; retry");
}

/**
 * Refuses a browser request from a page that is not ours (this origin or `DASHBOARD_ORIGIN`). The
 * session cookie is SameSite=Strict, which stops other sites but not other origins of the same site
 * (a sibling subdomain, another port): without this, such a page could post a form, as `text/plain`
 * JSON, with the admin's cookie (CSRF), or sign the browser in as someone else. Browsers send an
 * `Origin` with every POST, so a request without one is curl or a script holding the cookie, unless
 * its `Sec-Fetch-Site` (which browsers send too) says another site's page made it.
 */
export function requireOwnOrigin(c: Context<AppEnv>): void {
  const origin = c.req.header("origin");
  if (origin === undefined) {
    const site = c.req.header("sec-fetch-site");
    if (site === "cross-site" || site === "same-site") throw new ApiError(403, "forbidden_origin", `a ${site} page may not use the session cookie`);
    return;
  }
  if (origin === new URL(c.req.url).origin || dashboardOrigins(c.env).includes(origin)) return;
  throw new ApiError(403, "forbidden_origin", `origin ${origin} may not use the session cookie`);
}

const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/** Requires a valid session; puts the user on the context. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const bearer = bearerToken(c.req.header("authorization"));
  const token = bearer ?? getCookie(c, SESSION_COOKIE);
  if (!token) throw new ApiError(401, "unauthenticated", "sign in first (session cookie or bearer token)");
  // The cookie rides along with any page's request: it may change things only from ours.
  if (!bearer && !SAFE_METHODS.has(c.req.method)) requireOwnOrigin(c);
  const user = await sessionUser(c, token);
  if (!user) throw new ApiError(401, "unauthenticated", "session is invalid or expired");
  c.set("user", bearer ? user : await rotateIfOld(c, user));
  await next();
});

/**
 * Requires the signed-in user to hold `capability`, on the client named by route param `clientParam`
 * when given. The only place routes decide who may do what.
 */
export function requireCapability(capability: Capability, clientParam?: string) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const clientId = clientParam ? c.req.param(clientParam) : undefined;
    const user = c.get("user");
    if (!allows(user, capability, clientId)) {
      // The role's own lack first: finance asking for a report is refused for the report, not the client.
      throw new ApiError(403, "forbidden", clientId && allows(user, capability) ? `no access to client ${clientId}` : `requires ${capability} access`);
    }
    await next();
  });
}
