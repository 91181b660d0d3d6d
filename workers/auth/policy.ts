import type { Role } from "../../schema/api.ts";

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
}

/** What a route asks to do. Detail reports hold personal data, so finance gets counts, not rows. */
export type Capability = "counters" | "report" | "billing" | "admin";

const ROLE_CAPABILITIES: Record<Role, ReadonlySet<Capability>> = {
  admin: new Set(["counters", "report", "billing", "admin"]),
  finance: new Set(["counters", "billing"]),
  viewer: new Set(["counters", "report"]),
};

/** The one authorisation rule: role grants the capability, and viewers only on their own clients. */
export function allows(user: AuthUser, capability: Capability, clientId?: string): boolean {
  if (!ROLE_CAPABILITIES[user.role].has(capability)) return false;
  if (clientId === undefined || user.role !== "viewer") return true;
  return user.clientIds.includes(clientId);
}

/** Whether the user sees every client (no per-client filter needed). */
export function seesAllClients(user: AuthUser): boolean {
  return user.role !== "viewer";
}
