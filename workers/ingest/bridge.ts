import { BridgedEvent, aheadOfReceipt, billableByPricingType, type NotificationEvent } from "../../schema/event.ts";
import type { Rejection } from "../../schema/api.ts";
import { compileObject } from "./compiled-schema.ts";
import { countryOf } from "./country.ts";
import { jsonSyntaxError } from "../json-syntax.ts";

/** At most this many records in one request; larger batches get a 413 and should be split. */
export const MAX_RECORDS = 10_000;

export class MalformedBatch extends Error {}
export class TooManyRecords extends Error {}

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

/**
 * Kafka Connect's HTTP sink wraps each record as `{key, value, topic, partition, offset, ...}`;
 * the value may itself be a JSON string when a StringConverter is configured.
 */
function unwrapConnectRecord(record: unknown): unknown {
  if (typeof record !== "object" || record === null || Array.isArray(record)) return record;
  const r = record as Record<string, unknown>;
  if (!("value" in r) || "event_id" in r) return record;
  if (typeof r.value === "string") {
    try {
      return JSON.parse(r.value);
    } catch {
      return r.value;
    }
  }
  return r.value;
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
      if (records.length > MAX_RECORDS) throw new TooManyRecords();
    }
    return records;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw new MalformedBatch(`body is ${jsonSyntaxError(e)}`);
  }
  const list =
    Array.isArray(parsed)
      ? parsed
      : typeof parsed === "object" && parsed !== null && Array.isArray((parsed as { events?: unknown }).events)
        ? (parsed as { events: unknown[] }).events
        : typeof parsed === "object" && parsed !== null
          ? [parsed]
          : null;
  if (!list) throw new MalformedBatch("expected an array of events, {\"events\": [...]}, or one event object");
  if (list.length > MAX_RECORDS) throw new TooManyRecords();
  return list.map((element, index) => ({ index, value: unwrapConnectRecord(element), source: { element } }));
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
        const message = parsed.error.issues.map((i) => `${i.path.join(".") || "(record)"}: ${i.message}`).join("; ");
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
