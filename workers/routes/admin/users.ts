import { and, asc, eq, exists, ne, or, sql, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { BatchItem } from "drizzle-orm/batch";
import { alias } from "drizzle-orm/sqlite-core";
import { Hono } from "hono";
import { CreateUserRequest, UpdateUserRequest, type AdminUser, type PublicUser } from "../../../schema/api.ts";
import { clients, userClients, users } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { hashPassword } from "../../auth/password.ts";
import { assertStrongPassword } from "../../auth/strong-password.ts";
import { ApiError } from "../../errors.ts";
import { inJsonList, jsonTable, jsonValue } from "../../json-list.ts";
import { valid } from "../../validate.ts";

/** Dashboard users and the clients a viewer may see. */
export const adminUsers = new Hono<AppEnv>();

adminUsers.get("/", async (c) => {
  const db = c.get("db");
  const rows = await db.select().from(users).orderBy(asc(users.id));
  const scopes = Map.groupBy(await db.select().from(userClients), (s) => s.userId);
  return c.json({ users: rows.map((u) => adminUserOf(u, (scopes.get(u.id) ?? []).map((s) => s.clientId))) });
});

function adminUserOf(row: typeof users.$inferSelect, clientIds: string[]): AdminUser {
  return { id: row.id, email: row.email, role: row.role, active: row.active, client_ids: clientIds };
}

async function assertClientsExist(db: DrizzleD1Database, clientIds: string[]): Promise<void> {
  if (clientIds.length === 0) return;
  const known = new Set((await db.select({ id: clients.id }).from(clients).where(inJsonList(clients.id, clientIds))).map((k) => k.id));
  const missing = clientIds.filter((id) => !known.has(id));
  if (missing.length > 0) throw new ApiError(400, "unknown_clients", "some client_ids do not exist", missing);
}

const others = alias(users, "others");
const subject = alias(users, "subject");

/**
 * Holds while user `id` is not an active admin, or an active admin other than them remains. A change
 * that may take admin from a user is written only under it, in the same statement: two admins
 * demoting each other at once would each pass a check made before writing, and leave nobody to
 * administer the service. Whether the user is an admin is read there too, not from the request's
 * earlier read: another admin may have made them one since, and demoted themselves counting on it.
 */
function leavesAnAdmin(db: DrizzleD1Database, id: number): SQL {
  const notAnActiveAdmin = exists(db.select({ id: subject.id }).from(subject).where(and(eq(subject.id, id), or(ne(subject.role, "admin"), eq(subject.active, false)))));
  const anotherAdmin = exists(db.select({ id: others.id }).from(others).where(and(eq(others.role, "admin"), eq(others.active, true), ne(others.id, id))));
  return or(notAnActiveAdmin, anotherAdmin)!;
}

/** The insert giving the user `user` (a condition on `users`) the clients `clientIds`: one statement whatever their number. */
function scopeWrites(db: DrizzleD1Database, clientIds: string[], user: SQL): BatchItem<"sqlite">[] {
  if (clientIds.length === 0) return [];
  return [db.insert(userClients).select(db.select({ userId: users.id, clientId: jsonValue("client_id") }).from(users).innerJoin(jsonTable(clientIds), sql`true`).where(user))];
}

adminUsers.post("/", valid("json", CreateUserRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  const email = body.email.toLowerCase();
  if ((await db.select({ id: users.id }).from(users).where(eq(users.email, email))).length > 0) {
    throw new ApiError(409, "user_exists", `a user ${email} already exists`);
  }
  await assertClientsExist(db, body.client_ids);
  await assertStrongPassword(body.password, email);
  const insertUser = db.insert(users).values({ email, passwordHash: await hashPassword(body.password), role: body.role, createdAt: Date.now() }).returning({ id: users.id });
  // The scopes select the new user's id, so that one batch (one transaction) writes the user and its
  // clients: a failure leaves neither, and the retry the 503 asks for creates both.
  const [[user]] = await db.batch([insertUser, ...scopeWrites(db, body.client_ids, eq(users.email, email))]);
  await audit(db, c.get("user").email, "user.create", email, { role: body.role });
  return c.json({ id: user!.id, email, role: body.role, client_ids: body.client_ids } satisfies PublicUser, 201);
});

/**
 * Changes a user's role, clients, state or password. A new password or a deactivation ends the
 * user's sessions (`sessions_valid_from`), REST at once and live sockets at their object's next
 * check; a change of role or clients closes their live sockets the same way, and the dashboard
 * reconnects with what the user may see now. An admin cannot demote or deactivate themselves (the
 * last admin would lock everyone out), nor, by two changes at once, each other.
 */
adminUsers.patch("/:id", valid("json", UpdateUserRequest), async (c) => {
  const id = /^[1-9]\d{0,15}$/.test(c.req.param("id")) ? Number(c.req.param("id")) : NaN;
  const body = c.req.valid("json");
  const db = c.get("db");
  const current = Number.isSafeInteger(id) ? (await db.select().from(users).where(eq(users.id, id)))[0] : undefined;
  if (!current) throw new ApiError(404, "user_not_found", `no user ${c.req.param("id")}`);
  if (id === c.get("user").id && ((body.role !== undefined && body.role !== "admin") || body.active === false)) {
    throw new ApiError(409, "own_access", "an admin cannot demote or deactivate themselves; ask another admin");
  }
  if (body.client_ids) await assertClientsExist(db, body.client_ids);
  if (body.password !== undefined) await assertStrongPassword(body.password, current.email);
  const endsSessions = body.password !== undefined || body.active === false;
  const changes = {
    ...(body.role !== undefined ? { role: body.role } : {}),
    ...(body.active !== undefined ? { active: body.active } : {}),
    ...(body.password !== undefined ? { passwordHash: await hashPassword(body.password) } : {}),
    // Past any session dated since this read its clock: the user's own password change may be
    // written meanwhile and hand out a session dated after that clock, which must end with the reset.
    ...(endsSessions ? { sessionsValidFrom: sql`max(${users.sessionsValidFrom} + 1, ${Date.now()})` } : {}),
  };
  const takesAdmin = (body.role !== undefined && body.role !== "admin") || body.active === false;
  // Every write of the change holds to it: the update changes only the user, so it holds after it as before.
  const guard = takesAdmin ? leavesAnAdmin(db, id) : undefined;
  const target = and(eq(users.id, id), guard)!;
  const [first, ...more]: BatchItem<"sqlite">[] = [
    ...(Object.keys(changes).length > 0 ? [db.update(users).set(changes).where(target)] : []),
    ...(body.client_ids ? [db.delete(userClients).where(and(eq(userClients.userId, id), guard)), ...scopeWrites(db, body.client_ids, target)] : []),
  ];
  const [written] = await db.batch([first!, ...more]);
  if (takesAdmin && (written as D1Result).meta.changes === 0) {
    throw new ApiError(409, "last_admin", `${current.email} is the last active admin; make another admin first`);
  }
  // Names of what changed only: a password is never logged.
  await audit(db, c.get("user").email, "user.update", current.email, { fields: Object.keys(body).filter((k) => body[k as keyof typeof body] !== undefined) });
  const [row] = await db.select().from(users).where(eq(users.id, id));
  const scopes = await db.select({ clientId: userClients.clientId }).from(userClients).where(eq(userClients.userId, id));
  return c.json(adminUserOf(row!, scopes.map((s) => s.clientId)));
});
