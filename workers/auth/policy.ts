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
 * whose password was reset, no longer matches it.
 */
export function accessGrant(userId: number, role: string, clientIds: readonly string[], sessionsValidFrom: number): string {
  return JSON.stringify([userId, role, [...clientIds].sort(), sessionsValidFrom]);
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
