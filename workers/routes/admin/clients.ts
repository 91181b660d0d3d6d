import { and, asc, eq, inArray } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { Hono } from "hono";
import { overviewOf } from "../../../durable-objects/overview.ts";
import { CreateClientRequest, UpdateClientRequest, type AdminClient } from "../../../schema/api.ts";
import { clients, phoneNumberReleases, phoneNumbers } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { ApiError, log } from "../../errors.ts";
import { countersOf, relayoutClient } from "../../client-counters.ts";
import { clientNotFound, findClient } from "../../client-records.ts";
import { forgetClients } from "../../ingest/client-directory.ts";
import { valid } from "../../validate.ts";

/** Clients and the phone numbers that route webhooks to them. */
export const adminClients = new Hono<AppEnv>();

export type Db = AppEnv["Variables"]["db"];

async function clientWithPhones(db: Db, id: string): Promise<AdminClient | null> {
  const row = await findClient(db, id);
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

adminClients.get("/", async (c) => {
  const db = c.get("db");
  const rows = await db.select().from(clients).orderBy(asc(clients.id));
  const phones = await db.select().from(phoneNumbers);
  return c.json({
    clients: rows.map(({ createdAt: _created, ...r }) => ({
      ...r,
      phone_number_ids: phones.filter((p) => p.clientId === r.id).map((p) => p.phoneNumberId),
    })) satisfies AdminClient[],
  });
});

adminClients.post("/", valid("json", CreateClientRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if (await findClient(db, body.id)) {
    throw new ApiError(409, "client_exists", `client ${body.id} already exists`);
  }
  await assertPhonesFree(db, body.phone_number_ids, body.id);
  await db.batch([
    db.insert(clients).values({ id: body.id, name: body.name, timezone: body.timezone, currency: body.currency, shards: body.shards, createdAt: Date.now() }),
    ...body.phone_number_ids.map((p) => db.insert(phoneNumbers).values({ phoneNumberId: p, clientId: body.id })),
  ]);
  forgetClients();
  await audit(db, c.get("user").email, "client.create", body.id);
  return c.json(await clientWithPhones(db, body.id), 201);
});

/**
 * The objects first (they then refuse calls routed by the old count), then D1, only from the count
 * they were asked to leave: when D1 does not take it (an error, or another change of the count got
 * there first) the objects are put back.
 */
async function changeShards(env: Env, db: Db, current: { id: string; shards: number }, shards: number): Promise<void> {
  const relayout = await relayoutClient(env, current, shards);
  if (relayout.refused === "holds_events") {
    throw new ApiError(409, "shards_fixed", `client ${current.id} has events: its shard count can grow, not shrink (${current.shards} now)`);
  }
  if (relayout.refused === "resharding") {
    throw new ApiError(409, "reshard_in_progress", `client ${current.id} grew its shard count within the last months; it can change again once that change's transition ends`);
  }
  let changed: number;
  try {
    const result = await db.update(clients).set({ shards }).where(and(eq(clients.id, current.id), eq(clients.shards, current.shards))).run();
    changed = result.meta.changes;
  } catch (err) {
    await relayout.undo();
    throw err;
  }
  if (changed === 0) {
    await relayout.undo();
    throw new ApiError(409, "concurrent_change", `the shard count of client ${current.id} changed meanwhile; read it again`);
  }
}

adminClients.patch("/:id", valid("json", UpdateClientRequest), async (c) => {
  const id = c.req.param("id");
  const { phone_number_ids, ...fields } = c.req.valid("json");
  const db = c.get("db");
  const current = await clientWithPhones(db, id);
  if (!current) throw clientNotFound(id);
  if (phone_number_ids) await assertPhonesFree(db, phone_number_ids, id);
  const { shards, ...rest } = fields;
  if (shards !== undefined && shards !== current.shards) await changeShards(c.env, db, current, shards);
  const changes = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  const released = phone_number_ids ? current.phone_number_ids.filter((p) => !phone_number_ids.includes(p)) : [];
  const releasedAt = Date.now();
  const [first, ...more]: BatchItem<"sqlite">[] = [
    ...(Object.keys(changes).length > 0 ? [db.update(clients).set(changes).where(eq(clients.id, id))] : []),
    ...(phone_number_ids
      ? [
          db.delete(phoneNumbers).where(eq(phoneNumbers.clientId, id)),
          ...phone_number_ids.map((p) => db.insert(phoneNumbers).values({ phoneNumberId: p, clientId: id })),
          ...released.map((p) => db.insert(phoneNumberReleases).values({ phoneNumberId: p, clientId: id, releasedAt })),
        ]
      : []),
  ];
  if (first) await db.batch([first, ...more]);
  forgetClients();
  await audit(db, c.get("user").email, "client.update", id, Object.keys(c.req.valid("json")));
  const updated = (await clientWithPhones(db, id))!;
  if (Object.keys(changes).length > 0) await tellOverview(c.env, updated);
  return c.json(updated);
});

/**
 * The Overview hears of a new name, time zone or state now, with the client's counts as its objects
 * count them in its zone; the change itself is done, so a failure here is logged, not answered (the
 * Overview catches up with the next event, or within a minute).
 */
async function tellOverview(env: Env, client: { id: string; timezone: string; shards: number }): Promise<void> {
  try {
    const rollups = await Promise.all(countersOf(env, client).map((s, shard) => s.liveRollup(client.id, client.timezone, shard)));
    await overviewOf(env, client.id).clientChanged(client.id, rollups);
  } catch (err) {
    log("warn", null, "overview_client_change_failed", { client_id: client.id, error: String(err) });
  }
}
