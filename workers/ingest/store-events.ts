import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { dispatch, groupByClient, type DispatchResult, type RoutedEvent } from "./dispatch.ts";
import { exposeIngestStats } from "./ingest-stats.ts";
import { relayRollups } from "./rollup-relay.ts";

/** What dispatch reports, with the events of full objects as the caller routed them (where each was in its request). */
export type StoredEvents = Omit<DispatchResult, "full"> & { full: RoutedEvent[] };

/**
 * Stores a request's routed events, one RPC per client shard, resolving once every object committed
 * or is full, relays the rollups the objects handed back, and states the storage work on the response.
 */
export async function storeEvents(c: Context<AppEnv>, routed: RoutedEvent[]): Promise<StoredEvents> {
  const batches = groupByClient(routed);
  const result = await dispatch(c.env, batches);
  relayRollups(c.env, c.executionCtx, result.rollups);
  exposeIngestStats(c, result, batches.length);
  if (result.full.length === 0) return { ...result, full: [] };
  // dispatch hands back the very event objects it was given.
  const routedOf = new Map(routed.map((r) => [r.event, r]));
  return { ...result, full: result.full.map((e) => routedOf.get(e)!) };
}
