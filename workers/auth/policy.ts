import { sha256Hex } from "./crypto.ts";
import { roleAllows, type Capability, type Role } from "../../schema/api.ts";

/** The signed-in caller, as every route sees it. */
export interface AuthUser {
  id: number;
  email: string;
  role: Role;
  /** Clients a viewer may see; admins and finance see all. */
  clientIds: string[];
  /** Session id (JWT `jti`), to revoke on logout. */
  sessionId: string;
  sessionExpiresAt: number;
  /**
   * The session a cookie rotation replaced this one with, while this one still answers in its grace
   * (session.ts): what is keyed by session, the password-change lockout, counts against that one, or
   * the old cookie would bring a lockout's worth of guesses of its own.
   */
  replacedBy?: string;
  /**
   * When the session was found valid (ms). What this request mints on its strength (a rotated
   * session, a live ticket) is dated no later, so a password reset landing meanwhile ends it too.
   */
  checkedAt: number;
  /** The user's access as it stands (`accessGrant`); a live socket ends once it changes. */
  grant: string;
}

/**
 * A user's access as one comparable string: who, in which role, with which clients (a viewer's), and
 * from when their sessions count. A live socket keeps the one it was opened with
 * (durable-objects/live-sockets.ts); a user deactivated, given another role or other clients, or
 * whose password was reset, no longer matches it. The user id and a SHA-256 of the rest: a socket's
 * attachment holds at most 16 KiB, which a viewer's list of a few hundred clients would pass.
 */
export async function accessGrant(userId: number, role: string, clientIds: readonly string[], sessionsValidFrom: number): Promise<string> {
  return `${userId}:${await sha256Hex(JSON.stringify([role, [...clientIds].sort(), sessionsValidFrom]))}`;
}

/** The user a grant is of (NaN for a grant of the whole-list form sockets kept until 2026-12-06). */
export function grantUserId(grant: string): number {
  return Number(grant.slice(0, grant.indexOf(":")));
}

/** The one authorisation rule: role grants the capability, and viewers only on their own clients. */
export function allows(user: AuthUser, capability: Capability, clientId?: string): boolean {
  if (!roleAllows(user.role, capability)) return false;
  if (clientId === undefined || user.role !== "viewer") return true;
  return user.clientIds.includes(clientId);
}

/** Whether the user sees every client (no per-client filter needed). */
export function seesAllClients(user: AuthUser): boolean {
  return user.role !== "viewer";
}
