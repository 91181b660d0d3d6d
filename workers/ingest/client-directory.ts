import { eq, inArray } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { clients, phoneNumbers } from "../../schema/db.ts";
import type { ClientRef } from "../../durable-objects/client-counter.ts";

/**
 * phone_number_id → client and client id → client, cached per isolate. Hits are kept 30 s (a changed
 * time zone or a new phone number shows within that; a changed shard count at once, because the
 * objects refuse calls routed by the old one and a failed dispatch drops this cache), misses 5 s so a
 * just-created client ingests at once.
 */
const HIT_TTL_MS = 30_000;
const MISS_TTL_MS = 5_000;

type Entry = { value: ClientRef | null; expires: number };
const byPhone = new Map<string, Entry>();
const byId = new Map<string, Entry>();

async function resolve(
  keys: Iterable<string>,
  cache: Map<string, Entry>,
  load: (missing: string[]) => Promise<Map<string, ClientRef>>,
): Promise<Map<string, ClientRef | null>> {
  const now = Date.now();
  const out = new Map<string, ClientRef | null>();
  const missing: string[] = [];
  for (const k of new Set(keys)) {
    const hit = cache.get(k);
    if (hit && hit.expires > now) out.set(k, hit.value);
    else missing.push(k);
  }
  if (missing.length > 0) {
    const loaded = await load(missing);
    for (const k of missing) {
      const value = loaded.get(k) ?? null;
      cache.set(k, { value, expires: now + (value ? HIT_TTL_MS : MISS_TTL_MS) });
      out.set(k, value);
    }
  }
  return out;
}

/** D1 caps bound parameters per statement at 100. */
function chunks<T>(items: T[], size = 90): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Active clients by their WhatsApp phone_number_id; unknown or inactive ones map to null. */
export function clientsByPhoneNumber(db: DrizzleD1Database, ids: Iterable<string>): Promise<Map<string, ClientRef | null>> {
  return resolve(ids, byPhone, async (missing) => {
    const found = new Map<string, ClientRef>();
    for (const part of chunks(missing)) {
      const rows = await db
        .select({ phone: phoneNumbers.phoneNumberId, id: clients.id, timezone: clients.timezone, shards: clients.shards, active: clients.active })
        .from(phoneNumbers)
        .innerJoin(clients, eq(clients.id, phoneNumbers.clientId))
        .where(inArray(phoneNumbers.phoneNumberId, part));
      for (const r of rows) if (r.active) found.set(r.phone, { id: r.id, timezone: r.timezone, shards: r.shards });
    }
    return found;
  });
}

/** Active clients by id; unknown or inactive ones map to null. */
export function clientsById(db: DrizzleD1Database, ids: Iterable<string>): Promise<Map<string, ClientRef | null>> {
  return resolve(ids, byId, async (missing) => {
    const found = new Map<string, ClientRef>();
    for (const part of chunks(missing)) {
      const rows = await db
        .select({ id: clients.id, timezone: clients.timezone, shards: clients.shards, active: clients.active })
        .from(clients)
        .where(inArray(clients.id, part));
      for (const r of rows) if (r.active) found.set(r.id, { id: r.id, timezone: r.timezone, shards: r.shards });
    }
    return found;
  });
}

/** Drops cached entries after an admin change, so this isolate sees it at once. */
export function forgetClients(): void {
  byPhone.clear();
  byId.clear();
}
