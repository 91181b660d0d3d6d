import { Hono } from "hono";
import { eventTableExpired, eventTableFor } from "../../../durable-objects/client-counter-tables.ts";
import { DeadLetterQuery } from "../../../schema/api.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { ApiError } from "../../errors.ts";
import { replayLetter } from "../../ingest/dead-letter-replay.ts";
import type { DeadLetterList, DeadLetterReplay, StoredDeadLetter } from "../../../schema/api.ts";
import { deadLetterPrefix } from "../../ingest/dead-letters.ts";
import type { RoutedEvent } from "../../ingest/dispatch.ts";
import { storeEvents } from "../../ingest/store-events.ts";
import { valid } from "../../validate.ts";
import { utcDayStart } from "../../../schema/time.ts";

/** Input kept in `dlq/` (unknown phone numbers and clients, refused records): look at it, replay it. */
export const adminDeadLetters = new Hono<AppEnv>();

/** A page stops early past this many bytes of letters, so a replay's events fit one Worker's memory. */
const PAGE_MAX_BYTES = 16 * 1024 * 1024;

interface Page {
  letters: { key: string; bytes: number; letter: StoredDeadLetter }[];
  next: string | null;
}

/** One page of a day's letters, read whole, oldest key first. */
async function readPage(bucket: R2Bucket, date: string, startAfter: string | undefined, limit: number): Promise<Page> {
  const listed = await bucket.list({ prefix: deadLetterPrefix(date), startAfter, limit });
  const page: Page = { letters: [], next: null };
  let bytes = 0;
  for (const o of listed.objects) {
    if (page.letters.length > 0 && bytes + o.size > PAGE_MAX_BYTES) {
      page.next = page.letters.at(-1)!.key;
      return page;
    }
    const body = await bucket.get(o.key);
    // Listed, then gone: another replay resolved it meanwhile.
    if (!body) continue;
    page.letters.push({ key: o.key, bytes: o.size, letter: await body.json<StoredDeadLetter>() });
    bytes += o.size;
  }
  if (listed.truncated) page.next = listed.objects.at(-1)?.key ?? null;
  return page;
}

/** The day's letters with their reasons (not their input, which holds recipients' numbers). */
adminDeadLetters.get("/", valid("query", DeadLetterQuery), async (c) => {
  const { date, start_after, limit } = c.req.valid("query");
  const page = await readPage(c.env.LAKE, date, start_after, limit);
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
 * the letters' requests did store must still be known as duplicates.
 */
adminDeadLetters.post("/replay", valid("query", DeadLetterQuery), async (c) => {
  const { date, start_after, limit } = c.req.valid("query");
  if (eventTableExpired(eventTableFor(utcDayStart(date)), Date.now())) {
    throw new ApiError(400, "outside_dedup_window", `letters of ${date} are older than the dedup tables; replaying them could count events twice`);
  }
  const db = c.get("db");
  const page = await readPage(c.env.LAKE, date, start_after, limit);
  const routed: RoutedEvent[] = [];
  const resolved: string[] = [];
  const narrowed: { key: string; letter: StoredDeadLetter }[] = [];
  const remaining: { key: string; rejections: StoredDeadLetter["rejections"] }[] = [];
  for (const { key, letter } of page.letters) {
    const replay = await replayLetter(db, letter);
    for (const r of replay.routed) routed.push(r);
    if (replay.remaining.length === 0) resolved.push(key);
    else remaining.push({ key, rejections: replay.remaining });
    if (replay.remaining.length > 0 && JSON.stringify(replay.remaining) !== JSON.stringify(letter.rejections)) {
      narrowed.push({ key, letter: { ...letter, rejections: replay.remaining } });
    }
  }
  const stored = await storeEvents(c, routed);
  if (resolved.length > 0) await c.env.LAKE.delete(resolved);
  await Promise.all(narrowed.map(({ key, letter }) => c.env.LAKE.put(key, JSON.stringify(letter), { httpMetadata: { contentType: "application/json" } })));
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
