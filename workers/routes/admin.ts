import { and, asc, eq, inArray, isNull, sql } from "drizzle-orm";
import { Hono } from "hono";
import {
  CreateApiKeyRequest,
  CreateClientRequest,
  CreateUserRequest,
  RateCardRequest,
  UpdateClientRequest,
} from "../../schema/api.ts";
import { apiKeys, clients, phoneNumbers, rateCards, userClients, users } from "../../schema/db.ts";
import type { AppEnv } from "../app-env.ts";
import { audit } from "../audit.ts";
import { forgetApiKeys, newApiKey } from "../auth/api-keys.ts";
import { randomToken, sha256Hex } from "../auth/crypto.ts";
import { authenticate, requireCapability } from "../auth/middleware.ts";
import { hashPassword } from "../auth/password.ts";
import { ApiError } from "../errors.ts";
import { forgetClients } from "../ingest/client-directory.ts";
import { valid } from "../validate.ts";

export const admin = new Hono<AppEnv>();
admin.use(authenticate, requireCapability("admin"));

type Db = AppEnv["Variables"]["db"];

async function clientWithPhones(db: Db, id: string) {
  const [row] = await db.select().from(clients).where(eq(clients.id, id));
  if (!row) return null;
  const phones = await db.select().from(phoneNumbers).where(eq(phoneNumbers.clientId, id)).orderBy(asc(phoneNumbers.phoneNumberId));
  const { createdAt: _created, ...rest } = row;
  return { ...rest, phone_number_ids: phones.map((p) => p.phoneNumberId) };
}

/** Phone numbers already routed to another client: a number routes to exactly one client. */
async function assertPhonesFree(db: Db, phones: string[], clientId: string): Promise<void> {
  if (phones.length === 0) return;
  const taken = await db.select().from(phoneNumbers).where(inArray(phoneNumbers.phoneNumberId, phones));
  const foreign = taken.filter((p) => p.clientId !== clientId);
  if (foreign.length > 0) {
    throw new ApiError(409, "phone_number_taken", "phone numbers already belong to another client", foreign.map((p) => p.phoneNumberId));
  }
}

admin.get("/clients", async (c) => {
  const db = c.get("db");
  const rows = await db.select().from(clients).orderBy(asc(clients.id));
  const phones = await db.select().from(phoneNumbers);
  return c.json({
    clients: rows.map(({ createdAt: _created, ...r }) => ({
      ...r,
      phone_number_ids: phones.filter((p) => p.clientId === r.id).map((p) => p.phoneNumberId),
    })),
  });
});

admin.post("/clients", valid("json", CreateClientRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if ((await db.select({ id: clients.id }).from(clients).where(eq(clients.id, body.id))).length > 0) {
    throw new ApiError(409, "client_exists", `client ${body.id} already exists`);
  }
  await assertPhonesFree(db, body.phone_number_ids, body.id);
  await db.batch([
    db.insert(clients).values({ id: body.id, name: body.name, timezone: body.timezone, currency: body.currency, createdAt: Date.now() }),
    ...body.phone_number_ids.map((p) => db.insert(phoneNumbers).values({ phoneNumberId: p, clientId: body.id })),
  ]);
  forgetClients();
  await audit(db, c.get("user").email, "client.create", body.id);
  return c.json(await clientWithPhones(db, body.id), 201);
});

admin.patch("/clients/:id", valid("json", UpdateClientRequest), async (c) => {
  const id = c.req.param("id");
  const { phone_number_ids, ...fields } = c.req.valid("json");
  const db = c.get("db");
  if (!(await clientWithPhones(db, id))) throw new ApiError(404, "client_not_found", `no client ${id}`);
  if (phone_number_ids) await assertPhonesFree(db, phone_number_ids, id);
  const changes = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  await db.batch([
    db.update(clients).set(changes).where(eq(clients.id, id)),
    ...(phone_number_ids
      ? [
          db.delete(phoneNumbers).where(eq(phoneNumbers.clientId, id)),
          ...phone_number_ids.map((p) => db.insert(phoneNumbers).values({ phoneNumberId: p, clientId: id })),
        ]
      : []),
  ]);
  forgetClients();
  await audit(db, c.get("user").email, "client.update", id, Object.keys(c.req.valid("json")));
  return c.json(await clientWithPhones(db, id));
});

admin.get("/rate-cards", async (c) => {
  const rows = await c.get("db").select().from(rateCards).orderBy(asc(rateCards.id));
  return c.json({ rate_cards: rows.map(rateCardOut) });
});

function rateCardOut(r: typeof rateCards.$inferSelect) {
  return {
    id: r.id,
    client_id: r.clientId,
    category: r.category,
    country: r.country,
    unit_price_micros: r.unitPriceMicros,
    currency: r.currency,
    valid_from: new Date(r.validFrom).toISOString().slice(0, 10),
  };
}

/** Sets a price; without `valid_from` it is the price for all days (valid from 1970-01-01). */
admin.put("/rate-cards", valid("json", RateCardRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if (body.client_id !== null && (await db.select({ id: clients.id }).from(clients).where(eq(clients.id, body.client_id))).length === 0) {
    throw new ApiError(404, "client_not_found", `no client ${body.client_id}`);
  }
  const validFrom = body.valid_from ? Date.parse(`${body.valid_from}T00:00:00Z`) : 0;
  const key = and(
    body.client_id === null ? isNull(rateCards.clientId) : eq(rateCards.clientId, body.client_id),
    eq(rateCards.category, body.category),
    eq(rateCards.country, body.country),
    eq(rateCards.validFrom, validFrom),
  );
  const values = { unitPriceMicros: body.unit_price_micros, currency: body.currency };
  const [existing] = await db.select().from(rateCards).where(key);
  const [row] = existing
    ? await db.update(rateCards).set(values).where(eq(rateCards.id, existing.id)).returning()
    : await db
        .insert(rateCards)
        .values({ clientId: body.client_id, category: body.category, country: body.country, validFrom, ...values })
        .returning();
  await audit(db, c.get("user").email, "rate_card.put", body.client_id ?? "*", { category: body.category, country: body.country });
  return c.json(rateCardOut(row!));
});

admin.get("/users", async (c) => {
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

admin.post("/users", valid("json", CreateUserRequest), async (c) => {
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

admin.get("/api-keys", async (c) => {
  const rows = await c.get("db").select().from(apiKeys).orderBy(asc(apiKeys.createdAt));
  return c.json({
    api_keys: rows.map((k) => ({
      id: k.id,
      scope: k.scope,
      client_id: k.clientId,
      label: k.label,
      created_at: k.createdAt,
      revoked_at: k.revokedAt,
    })),
  });
});

/** Creates an ingest key; the key itself is shown only in this response. */
admin.post("/api-keys", valid("json", CreateApiKeyRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if (body.client_id && (await db.select({ id: clients.id }).from(clients).where(eq(clients.id, body.client_id))).length === 0) {
    throw new ApiError(404, "client_not_found", `no client ${body.client_id}`);
  }
  const key = newApiKey();
  const id = `key_${randomToken(8)}`;
  await db.insert(apiKeys).values({
    id,
    hash: await sha256Hex(key),
    scope: body.scope,
    clientId: body.client_id ?? null,
    label: body.label ?? null,
    createdAt: Date.now(),
  });
  await audit(db, c.get("user").email, "api_key.create", id, { client_id: body.client_id ?? null });
  return c.json({ id, key, scope: body.scope, client_id: body.client_id ?? null }, 201);
});

admin.delete("/api-keys/:id", async (c) => {
  const id = c.req.param("id");
  const db = c.get("db");
  const [row] = await db
    .update(apiKeys)
    .set({ revokedAt: sql`coalesce(${apiKeys.revokedAt}, ${Date.now()})` })
    .where(eq(apiKeys.id, id))
    .returning({ id: apiKeys.id, revokedAt: apiKeys.revokedAt });
  if (!row) throw new ApiError(404, "api_key_not_found", `no API key ${id}`);
  forgetApiKeys();
  await audit(db, c.get("user").email, "api_key.revoke", id);
  return c.json({ id, revoked_at: row.revokedAt });
});
