import { mergeLedgerLines } from "../durable-objects/billable-ledger.ts";
import type { ClientCounter, LedgerLine } from "../durable-objects/client-counter.ts";
import type { CompactedNow } from "../durable-objects/lake-compaction.ts";
import { counterOf, sumCategories, sumCounts, sumMinutes } from "../durable-objects/client-shards.ts";
import { transitionFrom, type Transition } from "../durable-objects/reshard.ts";
import { OBJECT_STORAGE_LIMIT_BYTES } from "../durable-objects/storage-watch.ts";
import type { CategoryCounts, ClientObjects, Erasure, MinuteCounts, StatusCounts } from "../schema/api.ts";
import { ApiError } from "./errors.ts";

/**
 * A client's counters read as one, whatever its shard count: each read asks every shard and sums
 * (a message lives in one shard, so sums are exact). A one-shard client costs one call, as before.
 */
export interface ShardedClient {
  id: string;
  shards: number;
}

/** The ClientCounters holding a client's events, shard 0 first. */
export function countersOf(env: Env, client: ShardedClient): DurableObjectStub<ClientCounter>[] {
  return Array.from({ length: client.shards }, (_, shard) => counterOf(env, client.id, shard));
}

/** Totals by status since local midnight in `timezone`. */
export async function clientToday(env: Env, client: ShardedClient, timezone: string): Promise<StatusCounts> {
  return sumCounts(await Promise.all(countersOf(env, client).map((s) => s.today(timezone))));
}

/** Per-minute counts in [from, to), one entry per minute with events. */
export async function clientCounters(env: Env, client: ShardedClient, from: number, to: number): Promise<MinuteCounts[]> {
  return sumMinutes(await Promise.all(countersOf(env, client).map((s) => s.counters(from, to))));
}

/** Counts by pricing category over the minutes in [from, to), in `CATEGORIES` order with none last. */
export async function clientCategories(env: Env, client: ShardedClient, from: number, to: number): Promise<CategoryCounts[]> {
  return sumCategories(await Promise.all(countersOf(env, client).map((s) => s.categoryTotals(from, to))));
}

/** Billable messages of each local day in `days`, by category and country. */
export async function clientLedgerLinesByDay(env: Env, client: ShardedClient, days: string[]): Promise<Record<string, LedgerLine[]>> {
  const parts = await Promise.all(countersOf(env, client).map((s) => s.ledgerLinesByDay(days)));
  if (parts.length === 1) return parts[0]!;
  return Object.fromEntries(days.map((day) => [day, mergeLedgerLines(parts.flatMap((p) => p[day] ?? []))]));
}

/** Why a change of a client's shard count was refused. */
type RelayoutRefusal = "holds_events" | "resharding";

/**
 * Moves a client's objects to `shards` shards; the caller then changes D1, or undoes this when D1
 * does not take it. Every object of the old and the new layout first agrees to serve the new count,
 * and from then on refuses calls routed by the old one (an isolate's stale cache: its sender
 * retries). A client without events just changes. One with events can only grow, through a
 * transition in which its shards find the messages that started under the old count (ClientCounter
 * `ingestResharded`): shrinking it would leave messages in shards nobody reads. When any object
 * refuses or cannot be asked, the ones that agreed are put back as they were.
 */
export async function relayoutClient(env: Env, client: ShardedClient, shards: number): Promise<Relayout> {
  const plain = await agree(countersOf(env, { id: client.id, shards: Math.max(client.shards, shards) }), shards, null);
  if (plain.refused !== "holds_events" || shards < client.shards) return plain;
  return agree(countersOf(env, { id: client.id, shards }), shards, transitionFrom(client.shards, Date.now()));
}

/** The outcome of `relayoutClient`: why it was refused (null: agreed), and how to undo an agreed change D1 did not take. */
export interface Relayout {
  refused: RelayoutRefusal | null;
  undo(): Promise<void>;
}

/** Asks every object; when one refuses or cannot be asked, puts back the ones that agreed. */
async function agree(objects: DurableObjectStub<ClientCounter>[], shards: number, transition: Transition | null): Promise<Relayout> {
  const change = crypto.randomUUID();
  const answers = await Promise.allSettled(objects.map((s) => s.relayout(shards, transition, change)));
  const undo = async () => {
    await Promise.all(
      objects.map((s, i) => {
        const a = answers[i]!;
        return a.status === "fulfilled" && a.value.ok ? s.restoreLayout(change) : null;
      }),
    );
  };
  const failed = answers.find((a) => a.status === "rejected");
  if (failed) {
    await undo();
    throw (failed as PromiseRejectedResult).reason;
  }
  const refused = answers.map((a) => (a as PromiseFulfilledResult<{ ok: boolean; refused?: RelayoutRefusal }>).value).find((v) => !v.ok)?.refused ?? null;
  if (refused) await undo();
  return { refused, undo };
}

/**
 * Object storage one event of daily volume takes once the object is in its steady state: an event
 * row of ~100 B kept for its receive-month plus two, ~76 days (docs/capacity.md, "Per-object
 * storage"). An object's own size lags its volume by those months, so the shard count is sized by
 * the volume.
 */
const STORAGE_BYTES_PER_DAILY_EVENT = 7_600;

/** The shards a client sending `eventsPerDay` needs so that no object outgrows its storage. */
export function shardsForStorage(eventsPerDay: number): number {
  return Math.max(1, Math.ceil((eventsPerDay * STORAGE_BYTES_PER_DAILY_EVENT) / OBJECT_STORAGE_LIMIT_BYTES));
}

/** Each of a client's objects as an operator sizes it, and the shard count its last day's volume needs for storage. */
export async function clientObjects(env: Env, client: ShardedClient, now: number): Promise<ClientObjects> {
  const objects = await Promise.all(countersOf(env, client).map((s) => s.objectStatus(now)));
  const events = objects.reduce((n, o) => n + o.events_last_24h, 0);
  return {
    client_id: client.id,
    shards: client.shards,
    storage_bytes: objects.reduce((n, o) => n + o.storage_bytes, 0),
    events_last_24h: events,
    storage_limit_bytes: OBJECT_STORAGE_LIMIT_BYTES,
    shards_for_storage: shardsForStorage(events),
    objects,
  };
}

/** Writes every shard's pending detail rows to the lake; the keys written. */
export async function flushClient(env: Env, client: ShardedClient): Promise<string[]> {
  return (await Promise.all(countersOf(env, client).map((s) => s.flush()))).flat();
}

/**
 * Asks the client's shard 0 to compact its lake partitions of the UTC `days` in its alarm (one
 * object: a partition's compaction covers every shard's files), whose start drops its expired event
 * tables, and its other shards to drop theirs: a quiet shard has no alarm that would (ClientCounter
 * `expireEventTables`). Returns once the days are recorded and the tables dropped.
 */
export async function compactClient(env: Env, client: ShardedClient, days: string[]): Promise<void> {
  const [first, ...others] = countersOf(env, client);
  await Promise.all([first!.compactLake(client.id, days), ...others.map((s) => s.expireEventTables())]);
}

/** Has the client's shard 0 compact its lake partition of the UTC `date` now (see `compactClient`). */
export function compactClientNow(env: Env, client: ShardedClient, date: string): Promise<CompactedNow> {
  return counterOf(env, client.id).compactLakeNow(client.id, date);
}

/**
 * `flushClient` before a read of the lake that must hold every event accepted before it (a report,
 * a recount): a failure is R2's or the object's, so the caller may retry (503 `flush_failed`).
 */
export async function flushBeforeLakeRead(env: Env, client: ShardedClient): Promise<void> {
  try {
    await flushClient(env, client);
  } catch (err) {
    throw new ApiError(503, "flush_failed", "the client's latest events could not be written to the lake; retry", undefined, err);
  }
}

/** Asks the client's shard 0 to erase `recipient` from its lake (see ClientCounter `eraseRecipient`). */
export function eraseRecipient(env: Env, client: ShardedClient, recipient: string): Promise<Erasure> {
  return counterOf(env, client.id).eraseRecipient(client.id, client.shards, recipient);
}

/** The client's erasure `id`, as its shard 0 keeps it. */
export function erasureOf(env: Env, clientId: string, id: string): Promise<Erasure | null> {
  return counterOf(env, clientId).erasureState(id);
}
