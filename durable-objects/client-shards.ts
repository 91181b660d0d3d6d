import type { CategoryCounts, MinuteCounts, StatusCounts } from "../schema/api.ts";
import { CATEGORIES, STATUSES } from "../schema/event.ts";
import type { ClientCounter } from "./client-counter.ts";

/*
 * A hot client's events are split over `shards` ClientCounters by `hash(message_id) % shards`
 * (DESIGN.md): all statuses of a message meet in one shard, so dedup and the ledger stay exact
 * there, and readers sum the shards. Shard 0 is the object a one-shard client always had.
 */

/**
 * Each shard numbers its outbox seqs in its own band (shard k: k·SEQ_BAND + 1 on), so its lake file
 * names (`part-<first_seq>-<last_seq>`) never collide with another shard's in a shared partition,
 * and a range never spans two shards (workers/lake/layout.ts reads a covering range as superseding).
 */
export const SEQ_BAND = 1_000_000_000_000;

/** '#' is not allowed in a client id (schema/event.ts), so a shard's name is never another client's. */
const SHARD_SEPARATOR = "#";

/** 32-bit FNV-1a: stable across isolates and deploys, cheap on short ids. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The shard that holds every status of a message. */
export function messageShard(messageId: string, shards: number): number {
  return shards <= 1 ? 0 : fnv1a(messageId) % shards;
}

/** `idFromName` of a client's shard. */
export function shardName(clientId: string, shard: number): string {
  return shard === 0 ? clientId : `${clientId}${SHARD_SEPARATOR}${shard}`;
}

/** The client and shard a `shardName` names. */
export function splitShardName(name: string): { clientId: string; shard: number } {
  const at = name.lastIndexOf(SHARD_SEPARATOR);
  return at < 0 ? { clientId: name, shard: 0 } : { clientId: name.slice(0, at), shard: Number(name.slice(at + 1)) };
}

/** The shard whose seq band holds `seq`. */
export const seqShard = (seq: number): number => Math.floor(seq / SEQ_BAND);

/** The ClientCounter stub of a client's shard (its only one, 0, unless the client is sharded). */
export function counterOf(env: Env, clientId: string, shard = 0): DurableObjectStub<ClientCounter> {
  return env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(shardName(clientId, shard)));
}

export function emptyCounts(): StatusCounts {
  return { accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
}

export function sumCounts(parts: StatusCounts[]): StatusCounts {
  const out = emptyCounts();
  for (const p of parts) for (const s of STATUSES) out[s] += p[s];
  return out;
}

/** Per-minute counts of several shards, summed minute by minute, in minute order. */
export function sumMinutes(parts: MinuteCounts[][]): MinuteCounts[] {
  if (parts.length === 1) return parts[0]!;
  return sumByKey(parts, (m) => m.minute).sort((a, b) => a.minute - b.minute);
}

/** Per-category counts of several shards, summed category by category, in `CATEGORIES` order with none last. */
export function sumCategories(parts: CategoryCounts[][]): CategoryCounts[] {
  const rank = (c: CategoryCounts) => (c.category === null ? CATEGORIES.length : CATEGORIES.indexOf(c.category));
  return sumByKey(parts, (c) => c.category).sort((a, b) => rank(a) - rank(b));
}

/** The entries of all parts, those with the same key summed status by status (copies: the parts stay as they were). */
function sumByKey<T extends StatusCounts, K>(parts: T[][], keyOf: (entry: T) => K): T[] {
  const byKey = new Map<K, T>();
  for (const part of parts) {
    for (const entry of part) {
      const held = byKey.get(keyOf(entry));
      if (!held) byKey.set(keyOf(entry), { ...entry });
      else for (const s of STATUSES) held[s] += entry[s];
    }
  }
  return [...byKey.values()];
}
