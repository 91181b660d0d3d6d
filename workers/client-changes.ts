import { and, eq, type SQL } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { overviewOf } from "../durable-objects/overview-shards.ts";
import { clients } from "../schema/db.ts";
import { countersOf, relayoutClient, type Relayout } from "./client-counters.ts";
import { ApiError } from "./errors.ts";
import { logLine } from "./log.ts";

/** A client's row in D1 as the change writes it. */
export type ClientRowChange = Partial<Omit<typeof clients.$inferInsert, "id" | "createdAt">>;

/**
 * The change's other writes (its phone numbers), each to be written only while `row` selects the
 * client's row as the change leaves it.
 */
export type WithClientChange = (row: SQL) => BatchItem<"sqlite">[];

/**
 * Writes a client's change to D1 in one batch: its row (`set`) and the writes that go with it. A
 * change of the shard count asks the objects first (they then refuse calls routed by the old
 * count), and D1 takes the batch only from the count they were asked to leave: when D1 does not
 * (an error, or another change of the count got there first) the objects are put back and nothing
 * of the change is written, its other fields and phone numbers included. After an error the objects
 * are put back only when D1 is read to hold the old count. A count sent as it was read is not
 * written: another admin's change of the count may have landed since.
 */
export async function writeClientChange(env: Env, db: DrizzleD1Database, current: { id: string; shards: number }, set: ClientRowChange, withIt: WithClientChange): Promise<void> {
  const { shards = current.shards, ...others } = set;
  const relayout = shards === current.shards ? null : await agreedRelayout(env, current, shards);
  const byId = eq(clients.id, current.id);
  const row = relayout ? and(byId, eq(clients.shards, current.shards))! : byId;
  const fields: ClientRowChange = relayout ? set : others;
  // The other writes go first, while the row still holds the count the change leaves: after the
  // update it holds the count arrived at, as a concurrent change to the same count leaves it too.
  const items: BatchItem<"sqlite">[] = [...withIt(row), ...(Object.keys(fields).length > 0 ? [db.update(clients).set(fields).where(row)] : [])];
  const [first, ...more] = items;
  if (!first) return;
  let taken: boolean;
  try {
    const results = await db.batch([first, ...more]);
    taken = relayout === null || (results.at(-1) as D1Result).meta.changes > 0;
  } catch (err) {
    // An error does not say the batch did not commit: its answer may have been lost on the way
    // back, and objects put back while D1 holds the new count serve a layout D1 does not route by
    // (a status counted in both). So they are put back only when D1 is read to hold the old count;
    // when that read fails too they stay, refusing the client's calls routed by the old count
    // until the admin's retry, which they agree to as they are.
    if (relayout && (await shardCountInD1(db, byId).catch(() => undefined)) === current.shards) await relayout.undo();
    throw err;
  }
  if (!taken) {
    // Another admin's change to the same count went through first: the objects serve it as D1 does.
    if ((await shardCountInD1(db, byId)) !== shards) await relayout!.undo();
    throw new ApiError(409, "concurrent_change", `the shard count of client ${current.id} changed meanwhile; read it again`);
  }
}

/** The client's shard count as D1 holds it now (undefined: no such client). */
async function shardCountInD1(db: DrizzleD1Database, byId: SQL): Promise<number | undefined> {
  return (await db.select({ shards: clients.shards }).from(clients).where(byId).get())?.shards;
}

/** The objects' agreement to serve `shards`; a 409 saying why when they refuse. */
async function agreedRelayout(env: Env, current: { id: string; shards: number }, shards: number): Promise<Relayout> {
  const relayout = await relayoutClient(env, current, shards);
  if (relayout.refused === "holds_events") {
    throw new ApiError(409, "shards_fixed", `client ${current.id} has events: its shard count can grow, not shrink (${current.shards} now)`);
  }
  if (relayout.refused === "resharding") {
    throw new ApiError(409, "reshard_in_progress", `client ${current.id} grew its shard count within the last months; it can change again once that change's transition ends`);
  }
  return relayout;
}

/**
 * The Overview hears of a new name, time zone or state now, with the client's counts as its objects
 * count them in its zone; the change itself is done, so a failure here is logged, not answered (the
 * Overview catches up with the next event, or within a minute).
 */
export async function tellOverview(env: Env, client: { id: string; timezone: string; shards: number }): Promise<void> {
  try {
    const rollups = await Promise.all(countersOf(env, client).map((s, shard) => s.clientChanged(client.id, client.timezone, shard)));
    await overviewOf(env, client.id).clientChanged(client.id, rollups);
  } catch (err) {
    logLine("warn", "overview_client_change_failed", { client_id: client.id }, err);
  }
}
