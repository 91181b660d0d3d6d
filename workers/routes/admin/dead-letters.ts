import { Hono } from "hono";
import { dedupCovers } from "../../../durable-objects/client-counter-tables.ts";
import { DeadLetterQuery } from "../../../schema/api.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { ApiError } from "../../errors.ts";
import { replayLetter } from "../../ingest/dead-letter-replay.ts";
import type { DeadLetterList, DeadLetterReplay, Rejection, StoredDeadLetter } from "../../../schema/api.ts";
import { narrowedLetter, readDeadLetterPage } from "../../ingest/dead-letters.ts";
import { storageFullRejection, type RoutedEvent } from "../../ingest/dispatch.ts";
import { storeEvents } from "../../ingest/store-events.ts";
import { valid } from "../../validate.ts";
import { utcDayStart } from "../../../schema/time.ts";

/** Input kept in `dlq/` (unknown phone numbers and clients, refused records): look at it, replay it. */
export const adminDeadLetters = new Hono<AppEnv>();

/** The day's letters with their reasons (not their input, which holds recipients' numbers). */
adminDeadLetters.get("/", valid("query", DeadLetterQuery), async (c) => {
  const { date, start_after, limit } = c.req.valid("query");
  const page = await readDeadLetterPage(c.env.LAKE, date, start_after, limit);
  return c.json({
    date,
    letters: page.letters.map(({ key, bytes, letter }) => ({ key, received_at: letter.received_at, source: letter.source, bytes, rejections: letter.rejections })),
    next: page.next,
  } satisfies DeadLetterList);
});

/**
 * Runs a page of the day's letters again (dead-letter-replay.ts): what can now be stored is, a letter
 * with nothing left refused is deleted after its events are durable, and a letter still partly
 * refused keeps its input (replaying it again only finds duplicates) with its rejections narrowed to
 * what is still refused, so the list shows what is outstanding. Only within the dedup window: events
 * the letters' requests did store, and those a retried request first stored a week before, must
 * still be known as duplicates.
 */
adminDeadLetters.post("/replay", valid("query", DeadLetterQuery), async (c) => {
  const { date, start_after, limit } = c.req.valid("query");
  if (!dedupCovers(utcDayStart(date), Date.now())) {
    throw new ApiError(400, "outside_dedup_window", `letters of ${date} may repeat events older than the dedup tables; replaying them could count events twice`);
  }
  const db = c.get("db");
  const page = await readDeadLetterPage(c.env.LAKE, date, start_after, limit);
  const routed: RoutedEvent[] = [];
  const letterOf = new Map<RoutedEvent, number>();
  const stillRefused: Rejection[][] = [];
  for (const [i, { letter }] of page.letters.entries()) {
    const replay = await replayLetter(db, letter);
    for (const r of replay.routed) {
      routed.push(r);
      letterOf.set(r, i);
    }
    stillRefused.push(replay.remaining);
  }
  const stored = await storeEvents(c, routed);
  // A client still full keeps its events refused in their letters, to replay after its shards grow
  // (what this replay stored comes back then as duplicates); the page's other letters go on.
  for (const r of stored.full) stillRefused[letterOf.get(r)!]!.push({ at: r.at, ...storageFullRejection(r.event.client_id) });
  const resolved: string[] = [];
  const narrowed: { key: string; etag: string; letter: StoredDeadLetter }[] = [];
  const remaining: { key: string; rejections: Rejection[] }[] = [];
  page.letters.forEach(({ key, etag, letter }, i) => {
    // In the batch's order, as ingest lists them (a webhook's paths keep the order they were found in).
    const rejections = stillRefused[i]!.sort((a, b) => (typeof a.at === "number" && typeof b.at === "number" ? a.at - b.at : 0));
    if (rejections.length === 0) return resolved.push(key);
    remaining.push({ key, rejections });
    if (JSON.stringify(rejections) !== JSON.stringify(letter.rejections)) narrowed.push({ key, etag, letter: narrowedLetter(letter, rejections) });
  });
  // Unconditional: a letter's name is the hash of its input, so whatever holds the name now holds the
  // input whose events were just stored (a retry's rewrite, or another replay's narrowing).
  // R2 failing from here answers 503 (workers/errors.ts): the retry finds the events stored as duplicates.
  if (resolved.length > 0) await c.env.LAKE.delete(resolved);
  // Only over the version read: a replay that finished meanwhile may have deleted or narrowed it further.
  await Promise.all(
    narrowed.map(({ key, etag, letter }) =>
      c.env.LAKE.put(key, JSON.stringify(letter), { onlyIf: { etagMatches: etag }, httpMetadata: { contentType: "application/json" } }),
    ),
  );
  await audit(db, c.get("user").email, "dead_letters.replay", date, {
    letters: page.letters.length,
    resolved: resolved.length,
    accepted: stored.accepted,
    duplicates: stored.duplicates,
  });
  return c.json({
    date,
    letters: page.letters.length,
    resolved: resolved.length,
    accepted: stored.accepted,
    duplicates: stored.duplicates,
    remaining,
    next: page.next,
  } satisfies DeadLetterReplay);
});
