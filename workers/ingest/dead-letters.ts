import type { Rejection, StoredDeadLetter } from "../../schema/api.ts";
import { utcDate } from "../../schema/time.ts";
import { storeCall } from "../errors.ts";
import type { RejectedRecord } from "./bridge.ts";

/**
 * What a letter's `input` holds: the request body verbatim (webhooks, and bridged batches that could
 * not be split into records), or the rejected records of a bridged batch, `[{index, record}]` with
 * each record's text as it arrived.
 */
export type LetterInput = NonNullable<StoredDeadLetter["input_form"]>;

/** What is kept of a request (StoredDeadLetter, as the caller hands it over). */
export interface DeadLetter {
  source: StoredDeadLetter["source"];
  rejections: Rejection[];
  input: string;
  /** Absent: the request body. */
  form?: LetterInput;
  contentType?: string;
  clientScope?: string | null;
}

/** Where every letter is: `dlq/date=<UTC day>/`. */
export const DEAD_LETTERS_ROOT = "dlq/";

/** The prefix of one UTC day's letters. */
export const deadLetterPrefix = (date: string): string => `${DEAD_LETTERS_ROOT}date=${date}/`;

/** Bridged records that were refused, as one letter. */
export function rejectedRecordsLetter(rejected: RejectedRecord[], contentType: string, clientScope: string | null): DeadLetter {
  return {
    source: "kafka",
    rejections: rejected.map(({ at, code, message }) => ({ at, code, message })),
    input: JSON.stringify(rejected.map((r) => ({ index: r.at, record: r.input }))),
    form: "records",
    contentType,
    clientScope,
  };
}

/**
 * The form of a stored letter's input. A letter kept before `input_form` tells it by its rejections
 * alone (a bridged batch that could not be split was kept whole, as `malformed`), until a replay
 * narrowed the `malformed` away: such a body is told from records by its shape.
 */
export function inputOf(letter: StoredDeadLetter): LetterInput {
  if (letter.input_form) return letter.input_form;
  if (letter.source !== "kafka" || letter.rejections.some((r) => r.code === "malformed")) return "body";
  return isRecordList(letter.input) ? "records" : "body";
}

/** `[{index, record}]`, as rejectedRecordsLetter writes it; a bridged event has neither field. */
function isRecordList(input: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input);
  } catch {
    return false;
  }
  return Array.isArray(parsed) && parsed.every((k) => typeof k?.index === "number" && typeof k?.record === "string");
}

/**
 * A letter with its rejections narrowed to what replay still refuses. Its form is written down, since
 * the narrowed rejections no longer tell it (a body split by a fixed parser loses its `malformed`).
 */
export function narrowedLetter(letter: StoredDeadLetter, remaining: Rejection[]): StoredDeadLetter {
  return { ...letter, input_form: inputOf(letter), rejections: remaining };
}

/**
 * A letter's name: a UUID (version 8, RFC 9562) made of the SHA-256 of what it keeps, so a sender's
 * retry of a request (after a 503, or Meta's redelivery) writes the same letter again instead of a
 * second copy of it beside the first. The reasons count by where and what (`at`, `code`), not by
 * their wording, which may name the time of receipt (`occurred_in_future`).
 */
async function letterId(letter: DeadLetter): Promise<string> {
  const reasons = letter.rejections.map((r) => [r.at, r.code]);
  const identity = JSON.stringify([letter.source, letter.clientScope ?? null, letter.contentType ?? null, reasons, letter.input]);
  const b = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(identity))).slice(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Keeps rejected input verbatim in R2 `dlq/date=<UTC day>/<uuid>.json` with the reasons. Fails with a
 * 503 when R2 does, so the sender retries rather than losing the input.
 */
export async function keepDeadLetter(bucket: R2Bucket, letter: DeadLetter): Promise<string> {
  const now = Date.now();
  const key = `${deadLetterPrefix(utcDate(now))}${await letterId(letter)}.json`;
  const stored: StoredDeadLetter = {
    received_at: now,
    source: letter.source,
    rejections: letter.rejections,
    content_type: letter.contentType ?? null,
    ...(letter.source === "kafka" ? { client_scope: letter.clientScope ?? null } : {}),
    input_form: letter.form ?? "body",
    input: letter.input,
  };
  await storeCall(bucket.put(key, JSON.stringify(stored), { httpMetadata: { contentType: "application/json" } }), "dead_letter_unavailable", "could not keep rejected input; retry the request");
  return key;
}

/** A page stops early past this many bytes of letters, so a replay's events fit one Worker's memory. */
const PAGE_MAX_BYTES = 16 * 1024 * 1024;

export interface DeadLetterPage {
  /** `etag`: the version read, so a rewrite cannot bring back a letter another replay deleted or changed. */
  letters: { key: string; bytes: number; etag: string; letter: StoredDeadLetter }[];
  next: string | null;
}

/** One page of a day's letters, read whole, oldest key first. */
export async function readDeadLetterPage(bucket: R2Bucket, date: string, startAfter: string | undefined, limit: number): Promise<DeadLetterPage> {
  const listed = await bucket.list({ prefix: deadLetterPrefix(date), startAfter, limit });
  const page: DeadLetterPage = { letters: [], next: null };
  let bytes = 0;
  for (const o of listed.objects) {
    if (page.letters.length > 0 && bytes + o.size > PAGE_MAX_BYTES) {
      page.next = page.letters.at(-1)!.key;
      return page;
    }
    const body = await bucket.get(o.key);
    // Listed, then gone: another replay resolved it meanwhile.
    if (!body) continue;
    page.letters.push({ key: o.key, bytes: o.size, etag: body.etag, letter: await body.json<StoredDeadLetter>() });
    bytes += o.size;
  }
  if (listed.truncated) page.next = listed.objects.at(-1)?.key ?? null;
  return page;
}
