import { and, asc, eq, ne, notExists, sql } from "drizzle-orm";
import { Hono } from "hono";
import { CreateClientRequest, UpdateClientRequest, type AdminClient } from "../../../schema/api.ts";
import { clients, phoneNumbers } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { markRebills } from "../../billing/rebills.ts";
import { daysDueSooner } from "../../billing/schedule.ts";
import { ApiError } from "../../errors.ts";
import { tellOverview, writeClientChange } from "../../client-changes.ts";
import { clientObjects } from "../../client-counters.ts";
import { assertPhonesFree, clientNotFound, type ClientRecord, clientWithPhones, findClientAnyCase, phoneNumberWrites, requireClient } from "../../client-records.ts";
import { forgetClients } from "../../ingest/client-directory.ts";
import { jsonTable, jsonValue } from "../../json-list.ts";
import { valid } from "../../validate.ts";

/** Clients and the phone numbers that route webhooks to them. */
export const adminClients = new Hono<AppEnv>();

adminClients.get("/", async (c) => {
  const db = c.get("db");
  const rows = await db.select().from(clients).orderBy(asc(clients.id));
  // Grouped once: filtering every number for each client was quadratic (10,000 clients, 20,000 numbers).
  const phones = Map.groupBy(await db.select().from(phoneNumbers).orderBy(asc(phoneNumbers.phoneNumberId)), (p) => p.clientId);
  return c.json({
    clients: rows.map(({ createdAt: _created, ...r }) => ({
      ...r,
      phone_number_ids: (phones.get(r.id) ?? []).map((p) => p.phoneNumberId),
    })) satisfies AdminClient[],
  });
});

/**
 * `client_id=Acme/` and `client_id=acme/` would be one folder wherever the lake is copied to a
 * case-insensitive file system (macOS, Windows), mixing two clients' rows.
 */
function clientExists(existing: ClientRecord, id: string): ApiError {
  const message = existing.id === id ? `client ${id} already exists` : `client ${existing.id} already exists: ids must differ in more than case`;
  return new ApiError(409, "client_exists", message);
}

adminClients.post("/", valid("json", CreateClientRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  const existing = await findClientAnyCase(db, body.id);
  if (existing) throw clientExists(existing, body.id);
  await assertPhonesFree(db, body.phone_number_ids, body.id);
  // The row is written only while no id differs from it in case alone: another admin may have
  // created one since the check above (the same id is the primary key's to refuse). The numbers
  // select the new row, so they are written only with it.
  const otherCase = db.select({ id: clients.id }).from(clients).where(and(sql`lower(${clients.id}) = lower(${body.id})`, ne(clients.id, body.id)));
  const [created] = await db.batch([
    db.insert(clients).select(
      db
        .select({
          id: jsonValue("id"),
          name: sql<string>`${body.name}`.as("name"),
          timezone: sql<string>`${body.timezone}`.as("timezone"),
          currency: sql<string>`${body.currency}`.as("currency"),
          shards: sql<number>`${body.shards}`.as("shards"),
          active: sql<boolean>`1`.as("active"),
          createdAt: sql<number>`${Date.now()}`.as("created_at"),
        })
        // A one-row table to select the row from, so that the condition can hold it back.
        .from(jsonTable([body.id]))
        .where(notExists(otherCase)),
    ),
    // One statement however many numbers: D1 counts each statement of a batch against the request's queries.
    ...(body.phone_number_ids.length === 0
      ? []
      : [db.insert(phoneNumbers).select(db.select({ phoneNumberId: jsonValue("phone_number_id"), clientId: clients.id }).from(clients).innerJoin(jsonTable(body.phone_number_ids), sql`true`).where(eq(clients.id, body.id)))]),
  ]);
  if (created.meta.changes === 0) throw clientExists((await findClientAnyCase(db, body.id))!, body.id);
  forgetClients();
  await audit(db, c.get("user").email, "client.create", body.id);
  return c.json(await clientWithPhones(db, body.id), 201);
});

adminClients.patch("/:id", valid("json", UpdateClientRequest), async (c) => {
  const id = c.req.param("id");
  const { phone_number_ids, ...fields } = c.req.valid("json");
  const db = c.get("db");
  const current = await clientWithPhones(db, id);
  if (!current) throw clientNotFound(id);
  if (phone_number_ids) await assertPhonesFree(db, phone_number_ids, id);
  const set = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  // Marked before the change: a mark of a day not yet due waits for it, should the change fail.
  if (fields.timezone !== undefined && fields.timezone !== current.timezone) {
    const now = Date.now();
    await markRebills(c.env.DB, daysDueSooner(current.timezone, fields.timezone, now), [id], now);
  }
  await writeClientChange(c.env, db, current, set, phone_number_ids ? phoneNumberWrites(db, id, phone_number_ids, Date.now()) : () => []);
  forgetClients();
  const updated = (await clientWithPhones(db, id))!;
  // Each named field as it was and as it is now: a moved number or a deactivation can be traced back.
  const named = Object.keys(c.req.valid("json")) as (keyof AdminClient)[];
  const pick = (client: AdminClient) => Object.fromEntries(named.map((k) => [k, client[k]]));
  await audit(db, c.get("user").email, "client.update", id, { before: pick(current), after: pick(updated) });
  if (Object.keys(set).some((k) => k !== "shards")) await tellOverview(c.env, updated);
  return c.json(updated);
});

/**
 * The client's Durable Objects as an operator sizes them: storage against the per-object limit, the
 * last day's volume and busiest minute, the lake backlog, and the shard count the volume needs
 * (docs/operations.md).
 */
adminClients.get("/:id/objects", async (c) => {
  const client = await requireClient(c.get("db"), c.req.param("id"));
  return c.json(await clientObjects(c.env, client, Date.now()));
});
