import type { DrizzleD1Database } from "drizzle-orm/d1";
import { MalformedBatch, NOT_UTF8, TooManyRecords, refuseNestedBatches, splitRecords, validateRecords, withinKeyScope } from "./bridge.ts";
import { INGEST_MAX_RECORDS, type Rejection, type StoredDeadLetter } from "../../schema/api.ts";
import { inputOf } from "./dead-letters.ts";
import type { RoutedEvent } from "./dispatch.ts";
import { routeRecords, routeStatuses } from "./routing.ts";
import { MalformedWebhook, parseWebhookText } from "./whatsapp.ts";

/** What a dead letter yields now: events to store, and what is still refused (with why). */
export interface LetterReplay {
  routed: RoutedEvent[];
  remaining: Rejection[];
}

/**
 * Runs a dead letter through today's parsers and client directory, as its request would run now: a
 * phone number or client added since, or a parser fixed since, turns its rejections into events.
 * Events are stamped with the letter's `received_at`. Statuses the original request did store are
 * routed again and come back as duplicates, so replaying is idempotent.
 */
export async function replayLetter(db: DrizzleD1Database, letter: StoredDeadLetter): Promise<LetterReplay> {
  if (letter.source === "whatsapp") return replayWebhook(db, letter);
  if (inputOf(letter) === "body") {
    const lossy = notUtf8(letter);
    if (lossy) return { routed: [], remaining: [lossy] };
    try {
      const records = splitRecords(letter.input, letter.content_type ?? "application/json");
      refuseNestedBatches(records);
      return await replayRecords(db, letter, records, (i) => i);
    } catch (e) {
      if (!(e instanceof MalformedBatch || e instanceof TooManyRecords)) throw e;
      const message = e instanceof TooManyRecords ? `more than ${INGEST_MAX_RECORDS} records` : e.message;
      return { routed: [], remaining: [{ at: "", code: "malformed", message }] };
    }
  }
  const kept = JSON.parse(letter.input) as { index: number; record: string }[];
  // Each record's text is one JSON value on one line (an NDJSON line, or an array element re-serialised).
  const records = splitRecords(kept.map((k) => k.record).join("\n"), "application/x-ndjson");
  return replayRecords(db, letter, records, (i) => kept[i]!.index);
}

/**
 * Ingest refuses a batch that is not UTF-8 (batchText), and so does replay: the letter holds U+FFFD
 * in place of the bad bytes, and ids that differed only there would collide.
 */
function notUtf8(letter: StoredDeadLetter): Rejection | undefined {
  return letter.rejections.find((r) => r.code === "malformed" && r.message === NOT_UTF8);
}

async function replayWebhook(db: DrizzleD1Database, letter: StoredDeadLetter): Promise<LetterReplay> {
  try {
    const parsed = parseWebhookText(letter.input, letter.received_at);
    const { routed, unknown } = await routeStatuses(db, parsed.statuses);
    return { routed, remaining: [...parsed.rejected, ...unknown] };
  } catch (e) {
    if (!(e instanceof MalformedWebhook)) throw e;
    return { routed: [], remaining: e.rejections };
  }
}

/** Bridged records of a letter; `indexOf` maps a record's position here to its index in the original batch. */
async function replayRecords(
  db: DrizzleD1Database,
  letter: StoredDeadLetter,
  records: ReturnType<typeof splitRecords>,
  indexOf: (i: number) => number,
): Promise<LetterReplay> {
  const { valid, rejected } = validateRecords(records, letter.received_at);
  // The batch's ingest key still limits it: a fixed parser must not widen what the key could send.
  const { allowed, foreign } = withinKeyScope(valid, letter.client_scope ?? null);
  const { routed, unknown } = await routeRecords(db, allowed);
  const remaining = [...rejected, ...foreign, ...unknown]
    .map(({ at, code, message }) => ({ at: indexOf(at as number), code, message }))
    .sort((a, b) => a.at - b.at);
  // An event the replay cannot store yet (its client still full) is named by its index in the batch.
  return { routed: routed.map((r) => ({ ...r, at: indexOf(r.at as number) })), remaining };
}
