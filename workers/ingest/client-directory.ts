import { asc, eq, inArray } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { clients, phoneNumberReleases, phoneNumbers } from "../../schema/db.ts";
import type { ClientRef } from "../../durable-objects/client-counter.ts";
import { inChunks } from "../chunks.ts";

/**
 * phone_number_id → client and client id → client, cached per isolate. Hits are kept 30 s (a changed
 * time zone or a new phone number shows within that; a changed shard count at once, because the
 * objects refuse calls routed by the old one and a failed dispatch drops this cache), misses 5 s so a
 * just-created client ingests at once.
 */
const HIT_TTL_MS = 30_000;
const MISS_TTL_MS = 5_000;
/**
 * A lookup that goes to D1 anyway also reloads the hits that would expire within this long, up to a
 * statement's worth of keys: an isolate serving many clients otherwise pays a D1 round trip on
 * nearly every request as their entries expire one by one (a third of the webhook benchmark's
 * clients expired within each 10 s window).
 */
const REFRESH_AHEAD_MS = 10_000;

/** `used`: served from the cache since it was loaded, so worth loading again before it expires. */
type Entry<V> = { value: V; expires: number; used: boolean };

/** Who owns a phone number now (null: nobody active) and who owned it before, oldest release first. */
export interface PhoneOwners {
  current: ClientRef | null;
  earlier: { until: number; client: ClientRef | null }[];
}

const byPhone = new Map<string, Entry<PhoneOwners>>();
const byId = new Map<string, Entry<ClientRef | null>>();
/**
 * Counts `forgetClients` calls: a lookup that read D1 before an admin change and answers after it
 * must not put what it read back for 30 s.
 */
let generation = 0;

/** Phone numbers per lookup: D1 caps bound parameters per statement at 100. */
const PHONES_PER_LOOKUP = 90;

/**
 * Hits of `cache` in use that expire within REFRESH_AHEAD_MS and are not among `loading`, at most
 * `room`. Entries are (re)inserted as they load, so the map runs in load order: the walk stops at the
 * first hit still fresh beyond the window, and drops the expired entries it passes that nobody used
 * (they load again when asked for), so keys an isolate stopped seeing are neither kept nor reloaded.
 */
function dueSoon<V>(cache: Map<string, Entry<V>>, now: number, loading: Set<string>, room: number, known: (value: V) => boolean): string[] {
  const due: string[] = [];
  for (const [k, e] of cache) {
    if (due.length >= room) break;
    if (e.expires > now + REFRESH_AHEAD_MS) {
      if (known(e.value)) break;
      continue;
    }
    if (e.used && known(e.value) && !loading.has(k)) due.push(k);
    else if (e.expires <= now) cache.delete(k);
  }
  return due;
}

/**
 * Looks `keys` up in `cache`, loading the missing ones in one go, with the hits about to expire;
 * `load` answers only the keys it found, the others take `absent`. An entry is a hit when `known`
 * says so, a miss otherwise.
 */
async function resolve<V>(
  keys: Iterable<string>,
  cache: Map<string, Entry<V>>,
  load: (missing: string[]) => Promise<Map<string, V>>,
  absent: V,
  known: (value: V) => boolean,
): Promise<Map<string, V>> {
  const now = Date.now();
  const out = new Map<string, V>();
  const missing = new Set<string>();
  for (const k of keys) {
    const hit = cache.get(k);
    if (hit && hit.expires > now) {
      hit.used = true;
      out.set(k, hit.value);
    } else missing.add(k);
  }
  if (missing.size > 0) {
    // The room left in the lookup's last statement: refreshing ahead adds no round trip.
    const room = (PHONES_PER_LOOKUP - (missing.size % PHONES_PER_LOOKUP)) % PHONES_PER_LOOKUP;
    const ahead = dueSoon(cache, now, missing, room, known);
    const loading = [...missing, ...ahead];
    const loadedIn = generation;
    const loaded = await load(loading);
    if (loadedIn !== generation) {
      for (const k of missing) out.set(k, loaded.get(k) ?? absent);
      return out;
    }
    for (const k of loading) {
      const value = loaded.get(k) ?? absent;
      cache.delete(k);
      cache.set(k, { value, expires: now + (known(value) ? HIT_TTL_MS : MISS_TTL_MS), used: false });
    }
    for (const k of missing) out.set(k, cache.get(k)!.value);
  }
  return out;
}

const refOf = (r: { id: string; timezone: string; shards: number; active: boolean }): ClientRef | null =>
  r.active ? { id: r.id, timezone: r.timezone, shards: r.shards } : null;

const NOBODY: PhoneOwners = { current: null, earlier: [] };

/** The owners of WhatsApp phone_number_ids, now and before (phone_number_releases). */
export function ownersByPhoneNumber(db: DrizzleD1Database, ids: Iterable<string>): Promise<Map<string, PhoneOwners>> {
  const entry = (found: Map<string, PhoneOwners>, phone: string) => {
    let owners = found.get(phone);
    if (!owners) found.set(phone, (owners = { current: null, earlier: [] }));
    return owners;
  };
  return resolve(
    ids,
    byPhone,
    async (missing) => {
      const found = new Map<string, PhoneOwners>();
      const client = { id: clients.id, timezone: clients.timezone, shards: clients.shards, active: clients.active };
      for (const part of inChunks(missing, PHONES_PER_LOOKUP)) {
        const [now, before] = await db.batch([
          db.select({ phone: phoneNumbers.phoneNumberId, ...client }).from(phoneNumbers).innerJoin(clients, eq(clients.id, phoneNumbers.clientId)).where(inArray(phoneNumbers.phoneNumberId, part)),
          db
            .select({ phone: phoneNumberReleases.phoneNumberId, until: phoneNumberReleases.releasedAt, ...client })
            .from(phoneNumberReleases)
            .innerJoin(clients, eq(clients.id, phoneNumberReleases.clientId))
            .where(inArray(phoneNumberReleases.phoneNumberId, part))
            .orderBy(asc(phoneNumberReleases.releasedAt)),
        ]);
        for (const r of now) entry(found, r.phone).current = refOf(r);
        for (const r of before) entry(found, r.phone).earlier.push({ until: r.until, client: refOf(r) });
      }
      return found;
    },
    NOBODY,
    (owners) => owners.current !== null,
  );
}

/** The client that owned the number when a status happened at `at`: its owner then, not now. */
export function ownerAt(owners: PhoneOwners, at: number): ClientRef | null {
  for (const e of owners.earlier) if (at < e.until) return e.client;
  return owners.current;
}

/** Active clients by id; unknown or inactive ones map to null. */
export function clientsById(db: DrizzleD1Database, ids: Iterable<string>): Promise<Map<string, ClientRef | null>> {
  return resolve(
    ids,
    byId,
    async (missing) => {
      const found = new Map<string, ClientRef | null>();
      for (const part of inChunks(missing, PHONES_PER_LOOKUP)) {
        const rows = await db
          .select({ id: clients.id, timezone: clients.timezone, shards: clients.shards, active: clients.active })
          .from(clients)
          .where(inArray(clients.id, part));
        for (const r of rows) found.set(r.id, refOf(r));
      }
      return found;
    },
    null,
    (client) => client !== null,
  );
}

/** Drops cached entries after an admin change, so this isolate sees it at once. */
export function forgetClients(): void {
  generation += 1;
  byPhone.clear();
  byId.clear();
}
