import { addFigures, type ClientRef, type IngestFigures } from "../../durable-objects/client-counter.ts";
import { counterOf, messageShard, shardName } from "../../durable-objects/client-shards.ts";
import { encodeCalls } from "../../durable-objects/event-batch.ts";
import type { ClientRollup } from "../../durable-objects/rollups.ts";
import type { NotificationEvent } from "../../schema/event.ts";
import { ApiError, isStorageFull } from "../errors.ts";
import { logLine } from "../log.ts";
import { forgetClients } from "./client-directory.ts";

/** A request's events for one shard of a client (`client.shard`), routed by one shard count (`client.shards`). */
export interface ClientBatch {
  client: ClientRef;
  events: NotificationEvent[];
}

/** A validated event and the client it belongs to. */
export interface RoutedEvent {
  client: ClientRef;
  event: NotificationEvent;
  /** Where the event was in its request (a record's index, a status's path), to name it in a rejection. */
  at: number | string;
}

/**
 * Groups events by client and, for a sharded client, by the shard of their message and the count
 * that routed it, keeping each group's events in arrival order.
 */
export function groupByClient(items: RoutedEvent[]): ClientBatch[] {
  const batches = new Map<string, ClientBatch>();
  for (const { client, event } of items) {
    const shards = client.shards ?? 1;
    const shard = messageShard(event.message_id, shards);
    // One request can carry a client by two counts (a webhook whose phone numbers this isolate cached
    // before and after an admin change of the count). Its object checks only the count a call
    // states, so a status routed by the stale count must go in a call of its own, to be refused
    // there, not in the fresh count's call to the same shard, to be stored where the new count
    // does not route its message (a space is not allowed in a client id).
    const key = `${shardName(client.id, shard)} ${shards}`;
    let b = batches.get(key);
    if (!b) batches.set(key, (b = { client: shard === 0 ? client : { ...client, shard }, events: [] }));
    b.events.push(event);
  }
  return [...batches.values()];
}

/**
 * What a request's objects reported, summed, the rollups they handed back for the Overview, and the
 * events of objects that are full (`full`), which the caller dead-letters (storageFullRejection).
 */
export type DispatchResult = IngestFigures & { rollups: ClientRollup[]; full: NotificationEvent[] };

/**
 * One RPC per batch (more for a batch's rows past MAX_CALL_BYTES), in parallel; resolves only
 * when every object has committed or is full. Any other failure is a 503: the sender retries the
 * whole request and dedup makes the retry safe. It also drops this isolate's client cache, so the
 * retry is routed by what D1 says now (an object refuses a call routed by a shard count it does not
 * serve). A full object (isStorageFull) refuses every retry alike, so its events come back in `full`
 * rather than as a 503 that Meta and the bridge would repeat for days, holding back the other
 * clients' events, stored at the first try, which the sender could never commit.
 */
export async function dispatch(env: Env, batches: ClientBatch[]): Promise<DispatchResult> {
  const calls = batches.flatMap((b) => encodeCalls(b.events).map((call) => ({ client: b.client, ...call })));
  const results = await Promise.allSettled(calls.map(({ client, batch }) => counterOf(env, client.id, client.shard).ingest(client, batch, { relayRollup: true, takesRefused: true })));
  const total: DispatchResult = { accepted: 0, duplicates: 0, rowsWritten: 0, rowsRead: 0, backgroundRowsWritten: 0, rollups: [], full: [] };
  const failed: string[] = [];
  // A full shard's events: the whole call's when the called object is full, a part's when a shard it
  // sent them on to is (ClientCounter `ingestResharded`).
  const refuse = (clientId: string, shard: number, events: NotificationEvent[], reason?: unknown) => {
    total.full.push(...events);
    logLine("error", "counter_storage_full", { client_id: clientId, shard, events: events.length }, reason);
  };
  results.forEach((r, i) => {
    const { client, events } = calls[i]!;
    const shard = client.shard ?? 0;
    if (r.status === "rejected") {
      if (isStorageFull(r.reason)) return refuse(client.id, shard, events, r.reason);
      failed.push(client.id);
      logLine("error", "counter_ingest_failed", { client_id: client.id, shard, events: events.length }, r.reason);
      return;
    }
    addFigures(total, r.value);
    if (r.value.rollup) total.rollups.push(r.value.rollup);
    for (const part of r.value.refused ?? []) refuse(client.id, part.shard, part.events.map((index) => events[index]!));
  });
  if (failed.length > 0) {
    forgetClients();
    throw new ApiError(503, "downstream_unavailable", "some events could not be stored; retry the request", {
      clients: [...new Set(failed)],
    });
  }
  return total;
}

/** Why a full object's event was not stored (dispatch's `full`); the replay of its dead letter stores it once the client has more shards. */
export function storageFullRejection(clientId: string): { code: string; message: string } {
  return { code: "client_storage_full", message: `client ${clientId}'s storage is full; the event is kept in the dead letters, to replay once the client has more shards` };
}
