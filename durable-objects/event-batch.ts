import { EVENT_COLUMNS, type NotificationEvent } from "../schema/event.ts";
import type { EventRow, EventValue } from "../workers/lake/columns.ts";

/**
 * How the ingest Worker hands one client's events to its ClientCounter: their detail rows (EventRow,
 * EVENT_COLUMNS order) as one JSON text, the outbox's own format. Structured-cloning 1,000 event
 * objects cost ~3 ms a batch (serialised by the Worker, deserialised by the object); the text costs
 * about as much as the object's own serialising of the detail rows for its outbox did, and when every
 * event of a batch is new it is that outbox row as it is (docs/bench-history.md,
 * "Ingest throughput: bridged and webhooks").
 */
export interface EventBatch {
  /** JSON text of EventRow[]. */
  rows: string;
}

/** A batch as the object works on it: the rows, as text and parsed, and the events they hold. */
export interface DecodedBatch {
  text: string;
  rows: EventRow[];
  events: NotificationEvent[];
}

/** The detail row of an event. */
export const rowOf = (e: NotificationEvent): EventRow => EVENT_COLUMNS.map((c) => e[c]);

export function encodeBatch(events: NotificationEvent[]): EventBatch {
  return { rows: JSON.stringify(events.map(rowOf)) };
}

/**
 * A call's rows in UTF-8 bytes at most: one call's rows become one outbox row, and a SQLite-backed
 * Durable Object refuses a value over 2 MB (Cloudflare's limit; local workerd does not enforce it),
 * so a request's 10,000 records for one client go as several calls.
 */
export const MAX_CALL_BYTES = 1 << 20;

const utf8 = new TextEncoder();

/** A batch's UTF-8 size, or a bound on it: a UTF-16 unit is at most 3 bytes, and most batches are far below. */
export function batchBytes(batch: EventBatch, limit: number): number {
  const bound = batch.rows.length * 3;
  return bound <= limit ? bound : utf8.encode(batch.rows).length;
}

/** `events` as calls of at most MAX_CALL_BYTES each (but for a lone event), in order, each with the events it carries. */
export function encodeCalls(events: NotificationEvent[]): { events: NotificationEvent[]; batch: EventBatch }[] {
  const batch = encodeBatch(events);
  if (events.length === 1 || batchBytes(batch, MAX_CALL_BYTES) <= MAX_CALL_BYTES) return [{ events, batch }];
  const half = Math.ceil(events.length / 2);
  return [...encodeCalls(events.slice(0, half)), ...encodeCalls(events.slice(half))];
}

export function decodeBatch(batch: EventBatch): DecodedBatch {
  const rows = JSON.parse(batch.rows) as EventRow[];
  return { text: batch.rows, rows, events: rows.map(eventOf) };
}

function eventOf(row: EventRow): NotificationEvent {
  const e: Record<string, EventValue> = {};
  for (let i = 0; i < EVENT_COLUMNS.length; i++) e[EVENT_COLUMNS[i]!] = row[i]!;
  return e as NotificationEvent;
}
