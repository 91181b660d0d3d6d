import { asc, eq, inArray } from "drizzle-orm";
import { Hono } from "hono";
import { CreateUserRequest } from "../../../schema/api.ts";
import { clients, userClients, users } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { hashPassword } from "../../auth/password.ts";
import { ApiError } from "../../errors.ts";
import { valid } from "../../validate.ts";

/** Dashboard users and the clients a viewer may see. */
export const adminUsers = new Hono<AppEnv>();

adminUsers.get("/", async (c) => {
  const db = c.get("db");
  const rows = await db.select().from(users).orderBy(asc(users.id));
  const scopes = await db.select().from(userClients);
  return c.json({
    users: rows.map((u) => ({
      id: u.id,
      email: u.email,
      role: u.role,
      active: u.active,
      client_ids: scopes.filter((s) => s.userId === u.id).map((s) => s.clientId),
    })),
  });
});

adminUsers.post("/", valid("json", CreateUserRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  const email = body.email.toLowerCase();
  if ((await db.select({ id: users.id }).from(users).where(eq(users.email, email))).length > 0) {
    throw new ApiError(409, "user_exists", `a user ${email} already exists`);
  }
  if (body.client_ids.length > 0) {
    const known = await db.select({ id: clients.id }).from(clients).where(inArray(clients.id, body.client_ids));
    const missing = body.client_ids.filter((id) => !known.some((k) => k.id === id));
    if (missing.length > 0) throw new ApiError(400, "unknown_clients", "some client_ids do not exist", missing);
  }
  const [user] = await db
    .insert(users)
    .values({ email, passwordHash: await hashPassword(body.password), role: body.role, createdAt: Date.now() })
    .returning({ id: users.id });
  const scopes = body.client_ids.map((clientId) => db.insert(userClients).values({ userId: user!.id, clientId }));
  if (scopes.length > 0) await db.batch(scopes as [(typeof scopes)[number], ...typeof scopes]);
  await audit(db, c.get("user").email, "user.create", email, { role: body.role });
  return c.json({ id: user!.id, email, role: body.role, client_ids: body.client_ids }, 201);
});
