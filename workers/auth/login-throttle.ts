import { eq, inArray, lt, sql } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { loginFailures } from "../../schema/db.ts";

/** Failed sign-ins are counted per key within a window of this length. */
const WINDOW_MS = 60_000;
/** How long a key that reached its limit is refused, whatever password it sends. */
const LOCK_MS = 60_000;
/**
 * Failures in one window that lock a key: an account against guessing its password, an address
 * against trying one password on many accounts (and against hashing for unknown emails forever).
 */
const LIMITS = { email: 10, ip: 50 } as const;

type KeyKind = keyof typeof LIMITS;

/**
 * Brute-force protection for `POST /v1/auth/login`. Only failures count, so a caller that signs in
 * often (a dashboard, a test suite) is never refused; the lock is checked before the password is,
 * so a locked key learns nothing from a right guess. A success clears its account's failures.
 * Cloudflare's rate-limiting binding counts every call and cannot be asked without counting, which
 * is why this lives in D1: a row per failing key, written on failures only.
 */
export class LoginThrottle {
  private readonly keys: Record<KeyKind, string>;
  /** Whether the account had failures counted when the lock was checked. */
  private accountHasFailures = false;

  constructor(
    private readonly db: DrizzleD1Database,
    email: string,
    ip: string,
    private readonly now = Date.now(),
  ) {
    this.keys = { email: `email:${email.toLowerCase()}`, ip: `ip:${ip}` };
  }

  /** Seconds until the caller may try again, or 0 when neither its account nor its address is locked. */
  async lockedForSeconds(): Promise<number> {
    const rows = await this.db
      .select({ key: loginFailures.key, lockedUntil: loginFailures.lockedUntil })
      .from(loginFailures)
      .where(inArray(loginFailures.key, Object.values(this.keys)));
    this.accountHasFailures = rows.some((r) => r.key === this.keys.email);
    const until = Math.max(0, ...rows.map((r) => r.lockedUntil));
    return until > this.now ? Math.ceil((until - this.now) / 1000) : 0;
  }

  /** Counts a failed attempt against the account and the address; either may lock. */
  async failed(): Promise<void> {
    const { db, now } = this;
    const stale = sql`${loginFailures.windowStart} <= ${now - WINDOW_MS}`;
    const count = sql`CASE WHEN ${stale} THEN 1 ELSE ${loginFailures.failures} + 1 END`;
    const upsert = (kind: KeyKind) =>
      db
        .insert(loginFailures)
        .values({ key: this.keys[kind], windowStart: now, failures: 1, lockedUntil: 0 })
        .onConflictDoUpdate({
          target: loginFailures.key,
          set: {
            failures: count,
            windowStart: sql`CASE WHEN ${stale} THEN ${now} ELSE ${loginFailures.windowStart} END`,
            lockedUntil: sql`CASE WHEN ${count} >= ${LIMITS[kind]} THEN ${now + LOCK_MS} ELSE ${loginFailures.lockedUntil} END`,
          },
        });
    await db.batch([upsert("email"), upsert("ip")]);
  }

  /** A right password: the account's failures no longer count (its address's still do). */
  async succeeded(): Promise<void> {
    if (this.accountHasFailures) await this.db.delete(loginFailures).where(eq(loginFailures.key, this.keys.email));
  }
}

/** Daily: failure counts whose window and lock have both passed no longer matter. */
export function staleLoginFailures(db: DrizzleD1Database, now: number) {
  return db.delete(loginFailures).where(lt(sql`max(${loginFailures.windowStart} + ${WINDOW_MS}, ${loginFailures.lockedUntil})`, now));
}
