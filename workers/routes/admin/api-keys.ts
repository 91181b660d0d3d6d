import { and, asc, eq, isNull } from "drizzle-orm";
import { Hono } from "hono";
import { CreateApiKeyRequest, type ApiKeyInfo, type CreatedApiKey, type RevokedApiKey } from "../../../schema/api.ts";
import { apiKeys } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { forgetApiKeys, newApiKey } from "../../auth/api-keys.ts";
import { randomToken, sha256Hex } from "../../auth/crypto.ts";
import { ApiError } from "../../errors.ts";
import { valid } from "../../validate.ts";
import { requireClient } from "../../client-records.ts";

/** Ingest API keys: shown once, stored as SHA-256, optionally scoped to one client. */
export const adminApiKeys = new Hono<AppEnv>();

adminApiKeys.get("/", async (c) => {
  const rows = await c.get("db").select().from(apiKeys).orderBy(asc(apiKeys.createdAt));
  return c.json({
    api_keys: rows.map((k): ApiKeyInfo => ({
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
adminApiKeys.post("/", valid("json", CreateApiKeyRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if (body.client_id) await requireClient(db, body.client_id);
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
  return c.json({ id, key, scope: body.scope, client_id: body.client_id ?? null } satisfies CreatedApiKey, 201);
});

/** Revoking is idempotent: a key already revoked keeps when it was first revoked, and is audited once. */
adminApiKeys.delete("/:id", async (c) => {
  const id = c.req.param("id");
  const db = c.get("db");
  const now = Date.now();
  const [revoked] = await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  if (revoked) {
    forgetApiKeys();
    await audit(db, c.get("user").email, "api_key.revoke", id);
    return c.json({ id, revoked_at: now } satisfies RevokedApiKey);
  }
  const [earlier] = await db.select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.id, id));
  if (!earlier) throw new ApiError(404, "api_key_not_found", `no API key ${id}`);
  return c.json({ id, revoked_at: earlier.revokedAt! } satisfies RevokedApiKey);
});
