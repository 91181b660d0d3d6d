import { MINUTE_MS } from "../schema/time.ts";

/**
 * Returns at once, or after the next minute starts when fewer than `marginMs` of this one are left:
 * a test that asserts on "this minute" must not straddle a minute turn (the counts move to the hour)
 * nor the Overview's minute tick (it sends every row again).
 */
export async function clearOfMinuteTurn(marginMs = 5_000): Promise<void> {
  const left = MINUTE_MS - (Date.now() % MINUTE_MS);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}
