import type { DrizzleD1Database } from "drizzle-orm/d1";
import { recordText, type RejectedRecord, type ValidatedBatch } from "./bridge.ts";
import { clientsById, ownerAt, ownersByPhoneNumber } from "./client-directory.ts";
import type { Rejection } from "../../schema/api.ts";
import type { RoutedEvent } from "./dispatch.ts";
import type { PendingStatus } from "./whatsapp.ts";
import { storeCall } from "../errors.ts";

/**
 * Assigns a webhook's statuses to the active clients that owned their phone numbers when they
 * happened; the statuses of numbers nobody owned come back as rejections (they go to the dead-letter
 * store, not to a 4xx).
 */
export async function routeStatuses(db: DrizzleD1Database, statuses: PendingStatus[]): Promise<{ routed: RoutedEvent[]; unknown: Rejection[] }> {
  const owners = await storeCall(ownersByPhoneNumber(db, statuses.map((s) => s.phoneNumberId)));
  const routed: RoutedEvent[] = [];
  const unknown: Rejection[] = [];
  for (const s of statuses) {
    const client = ownerAt(owners.get(s.phoneNumberId)!, s.event.occurred_at);
    if (client) routed.push({ client, event: { ...s.event, client_id: client.id }, at: s.path });
    else unknown.push({ at: s.path, code: "unknown_phone_number", message: `phone_number_id ${s.phoneNumberId} had no active client at ${new Date(s.event.occurred_at).toISOString()}` });
  }
  return { routed, unknown };
}

/** Assigns validated bridged records to their active clients; records of other clients come back as rejections. */
export async function routeRecords(db: DrizzleD1Database, valid: ValidatedBatch["valid"]): Promise<{ routed: RoutedEvent[]; unknown: RejectedRecord[] }> {
  const clients = await storeCall(clientsById(db, valid.map((v) => v.event.client_id)));
  const routed: RoutedEvent[] = [];
  const unknown: RejectedRecord[] = [];
  for (const v of valid) {
    const client = clients.get(v.event.client_id);
    if (client) routed.push({ client, event: v.event, at: v.index });
    else unknown.push({ at: v.index, code: "unknown_client", message: `client ${v.event.client_id} does not exist or is inactive`, input: recordText(v) });
  }
  return { routed, unknown };
}
