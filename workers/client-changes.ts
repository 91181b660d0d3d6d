import { and, eq } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { overviewOf } from "../durable-objects/overview.ts";
import { clients } from "../schema/db.ts";
import { countersOf, relayoutClient } from "./client-counters.ts";
import { ApiError, log } from "./errors.ts";

/**
 * The objects first (they then refuse calls routed by the old count), then D1, only from the count
 * they were asked to leave: when D1 does not take it (an error, or another change of the count got
 * there first) the objects are put back.
 */
export async function changeShards(env: Env, db: DrizzleD1Database, current: { id: string; shards: number }, shards: number): Promise<void> {
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

/**
 * The Overview hears of a new name, time zone or state now, with the client's counts as its objects
 * count them in its zone; the change itself is done, so a failure here is logged, not answered (the
 * Overview catches up with the next event, or within a minute).
 */
export async function tellOverview(env: Env, client: { id: string; timezone: string; shards: number }): Promise<void> {
  try {
    const rollups = await Promise.all(countersOf(env, client).map((s, shard) => s.liveRollup(client.id, client.timezone, shard)));
    await overviewOf(env, client.id).clientChanged(client.id, rollups);
  } catch (err) {
    log("warn", null, "overview_client_change_failed", { client_id: client.id, error: String(err) });
  }
}
