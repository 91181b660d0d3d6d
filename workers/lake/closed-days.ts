import { DAY_MS, utcDate } from "../../schema/time.ts";

/**
 * Closed UTC days looked at by each run. Meta retries a webhook for 7 days, so late events can add
 * small files to a day already compacted; the next run folds them in.
 */
export const COMPACTION_DAYS = 8;

/** The closed UTC days a run at `now` compacts, newest first. */
export function closedDays(now: number): string[] {
  return Array.from({ length: COMPACTION_DAYS }, (_, i) => utcDate(now - (i + 1) * DAY_MS));
}
