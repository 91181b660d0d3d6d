import { eq, lt, sql, type SQL } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { loginFailures } from "../../schema/db.ts";

/** Failed sign-ins are counted per key within a window of this length. */
const WINDOW_MS = 60_000;
/** How long a key that reached its limit is refused, whatever password it sends. */
const LOCK_MS = 60_000;
/**
 * Attempts in one window that a key may make (the next locks it): whoever signs in to an account
 * against guessing its password, an address against trying one password on many accounts (and
 * against hashing for unknown emails forever). A right password takes its attempt back.
 */
const LIMITS = { subject: 10, ip: 50 } as const;

export type KeyKind = keyof typeof LIMITS;

/**
 * Whose failures an attempt counts against: the account, when the caller is a stranger to it; the
 * device, when the caller holds a trusted-device token of the account (trusted-device.ts), so that
 * strangers cannot lock the owner out; the session, when a signed-in user confirms their password.
 */
export interface ThrottleSubject {
  kind: "account" | "device" | "session";
  /** The account's email, the device's id or the session's id. */
  id: string;
}

/** Each subject's key prefix in `login_failures` (an account's is its email). */
const KEY_PREFIX: Record<ThrottleSubject["kind"], string> = { account: "email", device: "device", session: "session" };

/** What a lock of `kind` holds back, as the audit log names it. */
export function lockName(subject: ThrottleSubject, kind: KeyKind): ThrottleSubject["kind"] | "address" {
  return kind === "ip" ? "address" : subject.kind;
}

/**
 * The network an address's failures count against: an IPv6 caller holds a whole /64 (a home line or
 * a cloud host gets one) and would get a fresh count from each interface id, so its first four
 * groups are the key; an IPv4 address (also mapped into IPv6) counts alone. Anything else, such as
 * local development's "local", is its own key.
 */
export function callerNetwork(address: string): string {
  const groups = ipv6Groups(address);
  if (!groups) return address;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join(".");
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** An IPv6 address's eight groups, or null when `address` is not one. */
function ipv6Groups(address: string): number[] | null {
  const text = address.split("%")[0]!.toLowerCase();
  const halves = text.split("::");
  if (!text.includes(":") || halves.length > 2) return null;
  const part = (half: string) => (half === "" ? [] : half.split(":"));
  const withV4 = (fields: string[]) => {
    const last = fields.at(-1);
    if (!last?.includes(".")) return fields;
    const octets = last.split(".").map(Number);
    if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return null;
    return [...fields.slice(0, -1), ((octets[0]! << 8) | octets[1]!).toString(16), ((octets[2]! << 8) | octets[3]!).toString(16)];
  };
  const head = halves.length === 2 ? part(halves[0]!) : withV4(part(halves[0]!));
  const tail = halves.length === 2 ? withV4(part(halves[1]!)) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const fields = [...head, ...Array<string>(missing).fill("0"), ...tail];
  if (fields.some((f) => !/^[0-9a-f]{1,4}$/.test(f))) return null;
  return fields.map((f) => parseInt(f, 16));
}

/**
 * Brute-force protection for `POST /v1/auth/login` and the current password of `POST
 * /v1/auth/password`. Each attempt is counted before its password is checked, in one D1 batch that
 * also answers whether the key is locked: attempts made at once (a burst of parallel guesses) each
 * see the ones before them, so at most LIMITS of them are checked, where checking the lock first and
 * counting after the hash let every attempt of a burst through. A locked key learns nothing from a
 * right guess. A right password takes its attempt back (the subject's failures are cleared, its
 * address's count goes down by one), so a caller that signs in often (a dashboard, a test suite) is
 * not refused, unless more than LIMITS of its sign-ins are in flight at once (each counts until its
 * password is checked). Cloudflare's rate-limiting binding counts every call and cannot take one
 * back, which is why this lives in D1: a row per key that tried.
 */
export class LoginThrottle {
  private readonly keys: Record<KeyKind, string>;
  private readonly now = Date.now();

  constructor(
    private readonly db: DrizzleD1Database,
    subject: ThrottleSubject,
    ip: string,
  ) {
    this.keys = { subject: `${KEY_PREFIX[subject.kind]}:${subject.id.toLowerCase()}`, ip: `ip:${callerNetwork(ip)}` };
  }

  /**
   * Counts this attempt against its subject and the address. Answers the seconds until the caller
   * may try again (its password is not to be checked), 0 when it may be checked now, and the keys
   * this attempt locked: the one past a limit starts the lock, the ones after it only count.
   */
  async attempt(): Promise<{ retryAfterS: number; locked: KeyKind[] }> {
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
            // A lock runs its course; the attempt past the limit starts one.
            lockedUntil: sql`CASE WHEN ${loginFailures.lockedUntil} > ${now} THEN ${loginFailures.lockedUntil} WHEN ${count} > ${LIMITS[kind]} THEN ${now + LOCK_MS} ELSE ${loginFailures.lockedUntil} END`,
          },
        })
        .returning({ lockedUntil: loginFailures.lockedUntil, failures: loginFailures.failures });
    const [[subject], [ip]] = await db.batch([upsert("subject"), upsert("ip")]);
    const until = Math.max(subject!.lockedUntil, ip!.lockedUntil);
    return {
      retryAfterS: until > now ? Math.ceil((until - now) / 1000) : 0,
      locked: (["subject", "ip"] as const).filter((kind) => ({ subject, ip })[kind]!.failures === LIMITS[kind] + 1),
    };
  }

  /**
   * A right password: the subject's failures no longer count, and the address's attempt is taken
   * back. A trusted device's success clears its own failures only: a stranger's against the account
   * go on counting, or signing in at home would reset an attacker's lock.
   */
  async succeeded(): Promise<void> {
    const { db } = this;
    await db.batch([
      db.delete(loginFailures).where(eq(loginFailures.key, this.keys.subject)),
      db
        .update(loginFailures)
        .set({ failures: sql`max(${loginFailures.failures} - 1, 0)` })
        .where(eq(loginFailures.key, this.keys.ip)),
    ]);
  }
}

/** Daily: failure counts whose window and lock have both passed no longer matter. */
export function loginFailureStale(now: number): SQL {
  return lt(sql`max(${loginFailures.windowStart} + ${WINDOW_MS}, ${loginFailures.lockedUntil})`, now);
}
