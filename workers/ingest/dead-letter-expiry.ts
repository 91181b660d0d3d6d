import { dedupCovers } from "../../durable-objects/client-counter-tables.ts";
import { utcDayStart } from "../../schema/time.ts";
import { deleteInPages } from "../chunks.ts";
import { log } from "../errors.ts";
import { DEAD_LETTERS_ROOT, deadLetterPrefix } from "./dead-letters.ts";

/** Keys one R2 list answers and one R2 delete takes. */
const PAGE = 1000;
/**
 * Letters deleted in one night at most (two subrequests per 1,000, beside the compaction's one per
 * client shard in the same invocation); a larger backlog goes on the next nights, oldest day first.
 */
export const EXPIRY_MAX_LETTERS = 100_000;

/** A day's prefix as R2 lists it (`dlq/date=YYYY-MM-DD/`) → its date; anything else → null. */
function dayOf(prefix: string): string | null {
  return /^dlq\/date=(\d{4}-\d{2}-\d{2})\/$/.exec(prefix)?.[1] ?? null;
}

/**
 * The "30 3 * * *" job: deletes the days of dead letters that replay refuses (outside the dedup
 * window, workers/routes/admin/dead-letters.ts), at the latest ~3 months after their day. They keep
 * request bodies verbatim, recipients' numbers included, and nothing else would ever delete a letter
 * that was not replayed (an unknown number never added, a status kind not counted). Days are listed
 * oldest first, so the first day still within the window ends the walk.
 */
export async function expireDeadLetters(env: Env, now: number): Promise<void> {
  let deleted = 0;
  const days: string[] = [];
  let cursor: string | undefined;
  walk: do {
    const listed = await env.LAKE.list({ prefix: DEAD_LETTERS_ROOT, delimiter: "/", cursor });
    for (const prefix of listed.delimitedPrefixes) {
      const date = dayOf(prefix);
      if (date === null) continue;
      if (dedupCovers(utcDayStart(date), now)) break walk;
      const { deleted: letters, done } = await deleteDay(env.LAKE, date, EXPIRY_MAX_LETTERS - deleted);
      deleted += letters;
      if (letters > 0) days.push(date);
      if (!done) break walk;
    }
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  if (deleted > 0) log("info", null, "dead_letters_expired", { days, letters: deleted });
}

/** Deletes up to `budget` of a day's letters; `done` when none is left. */
function deleteDay(bucket: R2Bucket, date: string, budget: number): Promise<{ deleted: number; done: boolean }> {
  return deleteInPages(budget, PAGE, async (limit) => {
    // Listed from the start each time: the page before is gone.
    const listed = await bucket.list({ prefix: deadLetterPrefix(date), limit });
    if (listed.objects.length > 0) await bucket.delete(listed.objects.map((o) => o.key));
    return { deleted: listed.objects.length, more: listed.truncated };
  });
}
