import type { ClientCounter, ClientRef, IngestResult } from "../../durable-objects/client-counter.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import type { ClientRollup } from "../../durable-objects/overview.ts";
import type { NotificationEvent } from "../../schema/event.ts";
import { ApiError, log } from "../errors.ts";

/** A request's events for one client. */
export interface ClientBatch {
  client: ClientRef;
  events: NotificationEvent[];
}

/** A validated event and the client it belongs to. */
export interface RoutedEvent {
  client: ClientRef;
  event: NotificationEvent;
}

/** Groups events by client, keeping each client's events in arrival order. */
export function groupByClient(items: RoutedEvent[]): ClientBatch[] {
  const batches = new Map<string, ClientBatch>();
  for (const { client, event } of items) {
    let b = batches.get(client.id);
    if (!b) batches.set(client.id, (b = { client, events: [] }));
    b.events.push(event);
  }
  return [...batches.values()];
}

/** The ClientCounter stub of a client. */
export function counterOf(env: Env, clientId: string): DurableObjectStub<ClientCounter> {
  return env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(clientId));
}

/** What a request's objects reported, summed, and the rollups they handed back for the Overview. */
export type DispatchResult = Omit<IngestResult, "rollup"> & { rollups: ClientRollup[] };

/**
 * One RPC per client, in parallel; resolves only when every object has committed. Any failure is a
 * 503: the sender retries the whole request and dedup makes the retry safe.
 */
export async function dispatch(env: Env, batches: ClientBatch[]): Promise<DispatchResult> {
  const results = await Promise.allSettled(batches.map((b) => counterOf(env, b.client.id).ingest(b.client, encodeBatch(b.events), { relayRollup: true })));
  const total: DispatchResult = { accepted: 0, duplicates: 0, rowsWritten: 0, rowsRead: 0, backgroundRowsWritten: 0, rollups: [] };
  const failed: string[] = [];
  results.forEach((r, i) => {
    if (r.status === "rejected") {
      failed.push(batches[i]!.client.id);
      log("error", null, "counter_ingest_failed", r.reason);
      return;
    }
    total.accepted += r.value.accepted;
    total.duplicates += r.value.duplicates;
    total.rowsWritten += r.value.rowsWritten;
    total.rowsRead += r.value.rowsRead;
    total.backgroundRowsWritten += r.value.backgroundRowsWritten;
    if (r.value.rollup) total.rollups.push(r.value.rollup);
  });
  if (failed.length > 0) {
    throw new ApiError(503, "downstream_unavailable", "some events could not be stored; retry the request", {
      clients: failed,
    });
  }
  return total;
}
