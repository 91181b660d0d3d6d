import { and, eq, gt, isNull } from "drizzle-orm";
import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import { liveTickets } from "../../schema/db.ts";
import { TICKET_TTL_MS } from "../../schema/live.ts";
import type { AppEnv } from "../app-env.ts";
import { ApiError, storeCall } from "../errors.ts";
import { sha256Hex } from "./crypto.ts";
import { requireOwnOrigin, sessionToken, sessionUser } from "./middleware.ts";
import type { AuthUser } from "./policy.ts";
import { SESSION_COOKIE, activeUser } from "./session.ts";

/**
 * The viewer behind an upgrade: a one-use `?ticket=` issued for exactly this stream (`clientId`, or
 * null for the overview) by a session that is still valid, else the bearer header or the session
 * cookie. The user carries that session's expiry, which ends the socket (live-sockets.ts).
 */
export async function liveUser(c: Context<AppEnv>, clientId: string | null, ticket: string | undefined): Promise<AuthUser> {
  const db = c.get("db");
  if (ticket !== undefined) {
    const hash = await sha256Hex(ticket);
    const now = Date.now();
    const used = await storeCall(
      db
        .update(liveTickets)
        .set({ usedAt: now })
        .where(and(eq(liveTickets.hash, hash), isNull(liveTickets.usedAt), gt(liveTickets.expiresAt, now)))
        .returning(),
    );
    const row = used[0];
    if (!row) throw new ApiError(401, "invalid_ticket", "ticket is unknown, used or expired");
    if (row.clientId !== clientId) throw new ApiError(403, "forbidden", "ticket was issued for another stream");
    if (row.sessionExpiresAt <= now) throw new ApiError(401, "unauthenticated", "the ticket's session has expired");
    // A ticket issued after the user's sessions ended came from a session issued after that too.
    const user = await storeCall(activeUser(db, row.userId, row.sessionId, row.sessionExpiresAt, row.expiresAt - TICKET_TTL_MS));
    if (!user) throw new ApiError(401, "unauthenticated", "the ticket's session was revoked or its user is inactive");
    return user;
  }
  const cookie = getCookie(c, SESSION_COOKIE);
  const token = sessionToken(c.req.header("authorization"), cookie);
  if (!token) throw new ApiError(401, "unauthenticated", "sign in first (session cookie, bearer token or ticket)");
  // A cookie rides along with any page's WebSocket (cross-site WebSocket hijacking).
  if (token === cookie) requireOwnOrigin(c);
  const user = await sessionUser(c, token);
  if (!user) throw new ApiError(401, "unauthenticated", "session is invalid or expired");
  return user;
}

