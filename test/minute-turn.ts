import { MINUTE_TICK_DELAY_MS } from "../schema/live.ts";
import { MINUTE_MS } from "../schema/time.ts";

/** Past the Overview's minute tick by this much: its alarm and the update it sends have gone out. */
const TICK_SETTLED_MS = MINUTE_TICK_DELAY_MS + 500;

/**
 * Returns at once, or once the next minute's tick is over when fewer than `marginMs` of this minute
 * are left or this minute's tick has not gone out yet: a test that asserts on "this minute" must not
 * straddle a minute turn (the counts move to the hour) nor the Overview's minute tick (it sends every
 * row again, outside the update interval). A day turns only at a minute turn, in UTC and in every
 * zone, so a test that asserts on "today" keeps clear of that too.
 */
export async function clearOfMinuteTurn(marginMs = 5_000): Promise<void> {
  const into = Date.now() % MINUTE_MS;
  const left = MINUTE_MS - into;
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + TICK_SETTLED_MS));
  else if (into < TICK_SETTLED_MS) await new Promise((r) => setTimeout(r, TICK_SETTLED_MS - into));
}
