import type { ClientCounter, LedgerLine } from "../durable-objects/client-counter.ts";
import { sumCounts, sumMinutes } from "../durable-objects/client-shards.ts";
import type { MinuteCounts, StatusCounts } from "../schema/api.ts";
import { counterOf } from "./ingest/dispatch.ts";

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

/** Billable messages of each local day in `days`, by category and country. */
export async function clientLedgerLinesByDay(env: Env, client: ShardedClient, days: string[]): Promise<Record<string, LedgerLine[]>> {
  const parts = await Promise.all(countersOf(env, client).map((s) => s.ledgerLinesByDay(days)));
  if (parts.length === 1) return parts[0]!;
  return Object.fromEntries(days.map((day) => [day, sumLedgerLines(parts.map((p) => p[day] ?? []))]));
}

/** Why a change of a client's shard count was refused. */
export type RelayoutRefusal = "holds_events" | "resharding";

/**
 * Moves a client to `shards` shards; the caller then changes D1. Every object of the old and the
 * new layout first agrees to serve the new count, and from then on refuses calls routed by the old
 * one (an isolate's stale cache: its sender retries). A client without events just changes. One
 * with events can only grow, through a transition in which its shards find the messages that
 * started under the old count (ClientCounter `ingestResharded`): shrinking it would leave messages
 * in shards nobody reads. When any object refuses, the ones that agreed are put back as they were.
 * Repeating a change that failed half-way is safe. Null when done, else why not.
 */
export async function relayoutClient(env: Env, client: ShardedClient, shards: number): Promise<RelayoutRefusal | null> {
  const refused = await agree(countersOf(env, { id: client.id, shards: Math.max(client.shards, shards) }), shards, null);
  if (refused !== "holds_events" || shards < client.shards) return refused;
  return agree(countersOf(env, { id: client.id, shards }), shards, client.shards);
}

async function agree(objects: DurableObjectStub<ClientCounter>[], shards: number, previous: number | null): Promise<RelayoutRefusal | null> {
  const answers = await Promise.all(objects.map((s) => s.relayout(shards, previous)));
  const refusal = answers.find((a) => !a.ok)?.refused;
  if (!refusal) return null;
  await Promise.all(objects.map((s, i) => (answers[i]!.ok ? s.restoreLayout(answers[i]!.prior) : null)));
  return refusal;
}

/** Writes every shard's pending detail rows to the lake; the keys written. */
export async function flushClient(env: Env, client: ShardedClient): Promise<string[]> {
  return (await Promise.all(countersOf(env, client).map((s) => s.flush()))).flat();
}

function sumLedgerLines(parts: LedgerLine[][]): LedgerLine[] {
  const byKey = new Map<string, LedgerLine>();
  for (const line of parts.flat()) {
    const key = `${line.category}|${line.country}`;
    const held = byKey.get(key);
    if (held) held.count += line.count;
    else byKey.set(key, { ...line });
  }
  // In the order one shard's lines come in (billable-ledger.ts).
  return [...byKey.values()].sort((a, b) => a.category.localeCompare(b.category) || a.country.localeCompare(b.country));
}
