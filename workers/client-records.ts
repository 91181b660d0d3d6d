import { and, asc, eq, exists, not, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { AdminClient } from "../schema/api.ts";
import { clients, phoneNumberReleases, phoneNumbers } from "../schema/db.ts";
import type { WithClientChange } from "./client-changes.ts";
import { ApiError } from "./errors.ts";
import { inJsonList, jsonTable, jsonValue } from "./json-list.ts";

export type ClientRecord = typeof clients.$inferSelect;

/** The answer to a route naming a client that does not exist. */
export function clientNotFound(id: string): ApiError {
  return new ApiError(404, "client_not_found", `no client ${id}`);
}

/** Client `id` (active or not) as D1 holds it. */
async function findClient(db: DrizzleD1Database, id: string): Promise<ClientRecord | undefined> {
  return (await db.select().from(clients).where(eq(clients.id, id)))[0];
}

/** The client whose id is `id` in any case (`Acme` for `acme`), the exact one first. */
export async function findClientAnyCase(db: DrizzleD1Database, id: string): Promise<ClientRecord | undefined> {
  const found = await db.select().from(clients).where(sql`lower(${clients.id}) = lower(${id})`);
  return found.find((c) => c.id === id) ?? found[0];
}

/** Client `id` (active or not); 404 `client_not_found` when there is none. */
export async function requireClient(db: DrizzleD1Database, id: string): Promise<ClientRecord> {
  const client = await findClient(db, id);
  if (!client) throw clientNotFound(id);
  return client;
}

/** Client `id` with the phone numbers routed to it, as the admin API shows it; null when there is none. */
export async function clientWithPhones(db: DrizzleD1Database, id: string): Promise<AdminClient | null> {
  const row = await findClient(db, id);
  if (!row) return null;
  const phones = await db.select().from(phoneNumbers).where(eq(phoneNumbers.clientId, id)).orderBy(asc(phoneNumbers.phoneNumberId));
  const { createdAt: _created, ...rest } = row;
  return { ...rest, phone_number_ids: phones.map((p) => p.phoneNumberId) };
}

/** Phone numbers already routed to another client: a number routes to exactly one client. */
export async function assertPhonesFree(db: DrizzleD1Database, phones: string[], clientId: string): Promise<void> {
  if (phones.length === 0) return;
  const taken = await db.select().from(phoneNumbers).where(inJsonList(phoneNumbers.phoneNumberId, phones));
  const foreign = taken.filter((p) => p.clientId !== clientId);
  if (foreign.length > 0) {
    throw new ApiError(409, "phone_number_taken", "phone numbers already belong to another client", foreign.map((p) => p.phoneNumberId));
  }
}

/**
 * The writes that give client `id` the numbers `phones` and record, at `at`, the ones it gives up:
 * each selects from the client's row where `row` holds, so they are written only together with the
 * change of that row (writeClientChange). The numbers given up are read inside the batch, not from
 * the request's earlier read: a concurrent change may have added one since, and a number dropped
 * without its release would send a Meta retry of its statuses to its next owner.
 */
export function phoneNumberWrites(db: DrizzleD1Database, id: string, phones: string[], at: number): WithClientChange {
  // A statement per list, whatever its length (a client may hold 1,000 numbers).
  return (row) => {
    const rowHolds = exists(db.select({ id: clients.id }).from(clients).where(row));
    const held = and(eq(phoneNumbers.clientId, id), rowHolds);
    return [
      db
        .insert(phoneNumberReleases)
        .select(
          db
            .select({ phoneNumberId: phoneNumbers.phoneNumberId, clientId: phoneNumbers.clientId, releasedAt: sql<number>`${at}`.as("released_at") })
            .from(phoneNumbers)
            .where(and(held, not(inJsonList(phoneNumbers.phoneNumberId, phones)))),
        )
        .onConflictDoNothing(),
      db.delete(phoneNumbers).where(held),
      ...(phones.length === 0 ? [] : [db.insert(phoneNumbers).select(db.select({ phoneNumberId: jsonValue("phone_number_id"), clientId: clients.id }).from(clients).innerJoin(jsonTable(phones), sql`true`).where(row))]),
    ];
  };
}
