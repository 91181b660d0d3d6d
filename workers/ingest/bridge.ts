import { BridgedEvent, aheadOfReceipt, billableByPricingType, type NotificationEvent } from "../../schema/event.ts";
import { INGEST_MAX_RECORDS, type Rejection } from "../../schema/api.ts";
import { fieldIssues } from "../../schema/issues.ts";
import { compileObject } from "./compiled-schema.ts";
import { countryOf } from "./country.ts";
import { jsonSyntaxError } from "../json-syntax.ts";

export class MalformedBatch extends Error {}
export class TooManyRecords extends Error {}

/**
 * A batch's body as text. A body that is not UTF-8 is malformed: read with U+FFFD in place of its bad
 * bytes, two ids that differ only there would become one, and dedup would drop the second event.
 */
export function batchText(bytes: ArrayBuffer): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new MalformedBatch(NOT_UTF8);
  }
}

/** The rejection of a batch that is not UTF-8; replay knows its letter by it (dead-letter-replay.ts). */
export const NOT_UTF8 = "body is not UTF-8 (the dead letter shows each byte that is not as U+FFFD)";

/** A record as it arrived, with its position, before validation. */
interface RawRecord {
  index: number;
  value: unknown;
  /** Set when the record could not even be parsed (bad NDJSON line). */
  parseError?: string;
  /**
   * What `recordText` makes the record's text for the dead-letter store from: the NDJSON line
   * verbatim, or the array element as it arrived. Only rejected records need the text, and
   * re-serialising every record of a 1,000-event batch cost ~5 % of bridged ingest; a closure per
   * record to defer it cost ~3 % more (esbuild names each one).
   */
  source: { line: string } | { element: unknown };
}

/** A record's text for the dead-letter store. */
export function recordText(r: Pick<RawRecord, "source">): string {
  return "line" in r.source ? r.source.line : JSON.stringify(r.source.element);
}

/** A record that failed, with its text for the dead-letter store. */
export type RejectedRecord = Rejection & { at: number; input: string };

export interface ValidatedBatch {
  valid: { index: number; source: RawRecord["source"]; event: NotificationEvent }[];
  rejected: RejectedRecord[];
}

/** Parsed JSON when `value` is JSON text (a StringConverter's output), else `value` itself. */
function parsedIfText(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The event inside a record's wrappers: Kafka Connect's HTTP sink sends `{key, value, topic,
 * partition, offset, ...}` (the value may be JSON text when a StringConverter is configured), and
 * its JsonConverter with schemas enabled (Kafka's default) writes `{schema, payload}`.
 */
function unwrapConnectRecord(record: unknown): unknown {
  let r = record;
  if (isObject(r) && "value" in r && !("event_id" in r)) r = parsedIfText(r.value);
  if (isObject(r) && "schema" in r && "payload" in r && !("event_id" in r)) r = parsedIfText(r.payload);
  return r;
}

/**
 * The name of an array inside a top-level object that is neither an event nor a wrapped record nor
 * `{events: [...]}` (`{records: [...]}`, `{data: [...]}`): another sender's envelope, whose events
 * would otherwise be read as one invalid record and answered 200, which senders commit.
 */
function foreignEnvelope(body: Record<string, unknown>): string | null {
  if ("event_id" in body || "value" in body || "payload" in body) return null;
  return Object.keys(body).find((k) => Array.isArray(body[k])) ?? null;
}

/**
 * Splits a bridge request into records: a JSON array, `{events: [...]}`, a single event, Connect
 * sink records (`value`-wrapped), or NDJSON (one record per line, a bad line rejects only itself).
 */
export function splitRecords(body: string, contentType: string): RawRecord[] {
  const records: RawRecord[] = [];
  if (/ndjson|jsonlines|x-jsonl/i.test(contentType)) {
    for (const line of body.split(/\r?\n/)) {
      if (line.trim() === "") continue;
      const index = records.length;
      const source = { line };
      try {
        records.push({ index, value: unwrapConnectRecord(JSON.parse(line)), source });
      } catch (e) {
        records.push({ index, value: undefined, source, parseError: jsonSyntaxError(e) });
      }
      if (records.length > INGEST_MAX_RECORDS) throw new TooManyRecords();
    }
    return records;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw new MalformedBatch(`body is ${jsonSyntaxError(e)}`);
  }
  const expected = "expected an array of events, {\"events\": [...]}, or one event object";
  let list: unknown[];
  if (Array.isArray(parsed)) list = parsed;
  else if (!isObject(parsed)) throw new MalformedBatch(expected);
  // An event carrying a field of its own named `events` is that event (unknown fields are ignored).
  else if (Array.isArray(parsed.events) && !("event_id" in parsed)) list = parsed.events;
  else if ("events" in parsed && !("event_id" in parsed)) throw new MalformedBatch(`${expected}; "events" is not an array`);
  else {
    const envelope = foreignEnvelope(parsed);
    if (envelope !== null) throw new MalformedBatch(`${expected}; got an object holding an array in "${envelope}"`);
    list = [parsed];
  }
  if (list.length > INGEST_MAX_RECORDS) throw new TooManyRecords();
  return list.map((element, index) => ({ index, value: unwrapConnectRecord(element), source: { element } }));
}

/**
 * Refuses a request whose every record is itself a batch: the events sent in the wrong form (a JSON
 * array or `{events: [...]}` as NDJSON, an array in an array). Read as invalid records, its events
 * would be answered 200, which senders commit, and stay unreadable in the dead letters. Among good
 * records such a record is rejected alone, as any bad record is: a 400 would hold back the batch.
 */
export function refuseNestedBatches(records: RawRecord[]): void {
  // Stops at the first event: a well-formed batch costs one look.
  if (records.length === 0 || !records.every((r) => batchShape(r.value) !== null)) return;
  throw new MalformedBatch(`every record is a batch of its own (record 0 is ${batchShape(records[0]!.value)}): send one event per NDJSON line, or the events as one JSON array`);
}

function batchShape(value: unknown): string | null {
  if (Array.isArray(value)) return "an array";
  return isObject(value) && !("event_id" in value) && Array.isArray(value.events) ? 'an object holding an array in "events"' : null;
}

/** BridgedEvent's fast path: most records are well-formed, and zod words the errors of the rest. */
const acceptBridged = compileObject(BridgedEvent);

/** Validates each record on its own; a bad record never sinks its neighbours. */
export function validateRecords(records: RawRecord[], receivedAt: number): ValidatedBatch {
  const out: ValidatedBatch = { valid: [], rejected: [] };
  for (const r of records) {
    if (r.parseError !== undefined) {
      out.rejected.push({ at: r.index, code: "invalid_json", message: r.parseError, input: recordText(r) });
      continue;
    }
    let e = acceptBridged(r.value);
    if (!e) {
      const parsed = BridgedEvent.safeParse(r.value);
      if (!parsed.success) {
        const message = fieldIssues(parsed.error).map((i) => `${i.path || "(record)"}: ${i.message}`).join("; ");
        out.rejected.push({ at: r.index, code: "invalid_event", message, input: recordText(r) });
        continue;
      }
      e = parsed.data;
    }
    const ahead = aheadOfReceipt(e.occurred_at, receivedAt);
    if (ahead) {
      out.rejected.push({ at: r.index, code: "occurred_in_future", message: ahead, input: recordText(r) });
      continue;
    }
    out.valid.push({
      index: r.index,
      source: r.source,
      event: {
        ...e,
        billable: e.billable ?? billableByPricingType(e.pricing_type),
        country: e.country ?? countryOf(e.recipient),
        received_at: receivedAt,
        source: "kafka",
      },
    });
  }
  return out;
}

/**
 * The first record naming another client when records name clients and none names `scope`, valid
 * or not: the key is then meant for another client's topic. A batch naming `scope` is the key's own,
 * its invalid and foreign records rejected one by one; one naming no client at all (unreadable
 * records) holds nothing that says whose it is, and its records are rejected one by one too.
 */
export function otherClientsOnly(records: RawRecord[], scope: string): { index: number; client_id: string } | null {
  let other: { index: number; client_id: string } | null = null;
  // Stops at the first record of `scope`: the key's own batch costs one look.
  for (const r of records) {
    const clientId = isObject(r.value) ? r.value.client_id : undefined;
    if (clientId === scope) return null;
    if (typeof clientId === "string") other ??= { index: r.index, client_id: clientId };
  }
  return other;
}

/**
 * The records an ingest key scoped to `scope` (null: every client) may store, and the others, each
 * rejected on its own (`client_not_allowed`) so that one foreign record does not hold its batch.
 */
export function withinKeyScope<T extends ValidatedBatch["valid"][number]>(valid: T[], scope: string | null): { allowed: T[]; foreign: RejectedRecord[] } {
  if (scope === null) return { allowed: valid, foreign: [] };
  const allowed: T[] = [];
  const foreign: RejectedRecord[] = [];
  for (const v of valid) {
    if (v.event.client_id === scope) allowed.push(v);
    else foreign.push({ at: v.index, code: "client_not_allowed", message: `this API key may only ingest for client ${scope}`, input: recordText(v) });
  }
  return { allowed, foreign };
}
