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

export function decodeBatch(batch: EventBatch): DecodedBatch {
  const rows = JSON.parse(batch.rows) as EventRow[];
  return { text: batch.rows, rows, events: rows.map(eventOf) };
}

function eventOf(row: EventRow): NotificationEvent {
  const e: Record<string, EventValue> = {};
  for (let i = 0; i < EVENT_COLUMNS.length; i++) e[EVENT_COLUMNS[i]!] = row[i]!;
  return e as NotificationEvent;
}
