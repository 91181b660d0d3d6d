import { lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { liveTickets, revokedSessions } from "../../schema/db.ts";
import { staleLoginFailures } from "./login-throttle.ts";

/**
 * Daily: revoked sessions and live tickets past their expiry can no longer be presented, and
 * sign-in failures past their window and lock no longer count, so they go.
 */
export async function purgeExpiredCredentials(env: Env, now: number): Promise<void> {
  const db = drizzle(env.DB);
  await db.batch([
    db.delete(revokedSessions).where(lt(revokedSessions.expiresAt, now)),
    db.delete(liveTickets).where(lt(liveTickets.expiresAt, now)),
    staleLoginFailures(db, now),
  ]);
}
