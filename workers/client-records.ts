import { eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { clients } from "../schema/db.ts";
import { ApiError } from "./errors.ts";

export type ClientRecord = typeof clients.$inferSelect;

/** The answer to a route naming a client that does not exist. */
export function clientNotFound(id: string): ApiError {
  return new ApiError(404, "client_not_found", `no client ${id}`);
}

/** Client `id` (active or not) as D1 holds it. */
export async function findClient(db: DrizzleD1Database, id: string): Promise<ClientRecord | undefined> {
  return (await db.select().from(clients).where(eq(clients.id, id)))[0];
}

/** Client `id` (active or not); 404 `client_not_found` when there is none. */
export async function requireClient(db: DrizzleD1Database, id: string): Promise<ClientRecord> {
  const client = await findClient(db, id);
  if (!client) throw clientNotFound(id);
  return client;
}
