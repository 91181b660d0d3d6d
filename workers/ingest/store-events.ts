import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { dispatch, groupByClient, type DispatchResult, type RoutedEvent } from "./dispatch.ts";
import { exposeIngestStats } from "./ingest-stats.ts";
import { relayRollups } from "./rollup-relay.ts";

/**
 * Stores a request's routed events, one RPC per client shard, resolving once every object committed,
 * relays the rollups the objects handed back, and states the storage work on the response.
 */
export async function storeEvents(c: Context<AppEnv>, routed: RoutedEvent[]): Promise<DispatchResult> {
  const batches = groupByClient(routed);
  const result = await dispatch(c.env, batches);
  relayRollups(c.env, c.executionCtx, result.rollups);
  exposeIngestStats(c, result, batches.length);
  return result;
}
