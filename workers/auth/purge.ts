import { inArray, lt, type SQL } from "drizzle-orm";
import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import type { SQLiteColumn, SQLiteTable } from "drizzle-orm/sqlite-core";
import { liveTickets, loginFailures, revokedSessions } from "../../schema/db.ts";
import { deleteInPages, type DeletedPage } from "../chunks.ts";
import { logLine } from "../log.ts";
import { loginFailureStale } from "./login-throttle.ts";

/**
 * Rows one statement deletes at most: a flood of sign-in failures (a row per email, network, device
 * and session tried) must not become one statement near D1's 30 s limit.
 */
const PURGE_PAGE = 5_000;
/**
 * Rows deleted in one night at most, all three tables together (40 statements); a larger backlog
 * goes on the next nights, and the night's line says which tables still hold some.
 */
const PURGE_MAX_ROWS = 200_000;

interface Expiring {
  name: string;
  table: SQLiteTable;
  key: SQLiteColumn;
  expired: (now: number) => SQL;
}

/** Smallest first: a flood of sign-in failures does not keep revoked sessions and tickets for days. */
const EXPIRING: Expiring[] = [
  { name: "revoked_sessions", table: revokedSessions, key: revokedSessions.jti, expired: (now) => lt(revokedSessions.expiresAt, now) },
  { name: "live_tickets", table: liveTickets, key: liveTickets.hash, expired: (now) => lt(liveTickets.expiresAt, now) },
  { name: "login_failures", table: loginFailures, key: loginFailures.key, expired: loginFailureStale },
];

/**
 * Daily: revoked sessions and live tickets past their expiry can no longer be presented, and
 * sign-in failures past their window and lock no longer count, so they go, at most
 * `PURGE_MAX_ROWS` a night (`credentials_purged`).
 */
export async function purgeExpiredCredentials(env: Env, now: number): Promise<void> {
  const db = drizzle(env.DB);
  const deleted: Record<string, number> = {};
  const left: string[] = [];
  let total = 0;
  for (const t of EXPIRING) {
    const purged = await deleteInPages(PURGE_MAX_ROWS - total, PURGE_PAGE, (limit) => deletePage(db, t, now, limit));
    total += purged.deleted;
    deleted[t.name] = purged.deleted;
    if (!purged.done) left.push(t.name);
  }
  if (left.length > 0) logLine("warn", "credentials_purged", { deleted, left });
  else if (total > 0) logLine("info", "credentials_purged", { deleted });
}

/**
 * One statement picks and deletes the page: a row a sign-in brings back to life between two
 * statements (a new window on an old key) would be deleted while it counts.
 */
async function deletePage(db: DrizzleD1Database, t: Expiring, now: number, limit: number): Promise<DeletedPage> {
  const page = db.select({ key: t.key }).from(t.table).where(t.expired(now)).limit(limit);
  const { meta } = await db.delete(t.table).where(inArray(t.key, page));
  return { deleted: meta.changes, more: meta.changes === limit };
}
