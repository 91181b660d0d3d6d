import { and, eq, isNull } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { apiKeys } from "../../schema/db.ts";
import { storeCall } from "../errors.ts";
import { randomToken, sha256Hex } from "./crypto.ts";

export interface IngestKey {
  id: string;
  /** When set, the key may only ingest for this client. */
  clientId: string | null;
}

/** Keys look like `zmk_<64 hex>`; only their SHA-256 is stored. */
export function newApiKey(): string {
  return `zmk_${randomToken(32)}`;
}

/** Revoked keys stop working within this long on every isolate. */
const CACHE_TTL_MS = 30_000;
/** Unknown tokens are cached too (a miss is a D1 query): random ones must not grow the cache without bound. */
const CACHE_LIMIT = 10_000;
/**
 * By the token as presented, so a hit hashes nothing: SHA-256 through WebCrypto on every request was
 * ~2–3 % of a bridged request's CPU. The isolate holds each token while it serves its request anyway.
 */
const cache = new Map<string, { key: IngestKey | null; expires: number }>();

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
}

/**
 * Longer than any key issued (`zmk_` and 64 hex, 68 characters) or seeded: such a token is no key,
 * refused before the cache, which would otherwise hold 10,000 of them, and before D1.
 */
const MAX_KEY_LENGTH = 128;

/** The active ingest key behind `Authorization: Bearer <key>`, or null. */
export async function ingestKeyFrom(db: DrizzleD1Database, authorization: string | undefined): Promise<IngestKey | null> {
  const presented = bearerToken(authorization);
  if (!presented || presented.length > MAX_KEY_LENGTH) return null;
  const hit = cache.get(presented);
  if (hit && hit.expires > Date.now()) return hit.key;
  const hash = await sha256Hex(presented);
  const row = (
    await storeCall(
      db
        .select({ id: apiKeys.id, clientId: apiKeys.clientId })
        .from(apiKeys)
        .where(and(eq(apiKeys.hash, hash), eq(apiKeys.scope, "ingest"), isNull(apiKeys.revokedAt))),
    )
  )[0];
  const key = row ? { id: row.id, clientId: row.clientId } : null;
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(presented, { key, expires: Date.now() + CACHE_TTL_MS });
  return key;
}

/** Forgets cached keys after a change (revocation) in this isolate. */
export function forgetApiKeys(): void {
  cache.clear();
}
