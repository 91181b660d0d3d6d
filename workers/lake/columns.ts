import type { SchemaElement } from "hyparquet";
import { EVENT_COLUMNS, NotificationEvent } from "../../schema/event.ts";

/** One detail row: the canonical event's values in EVENT_COLUMNS order (the outbox format). */
export type EventValue = string | number | boolean | null;
export type EventRow = EventValue[];

type Kind = "string" | "timestamp" | "boolean" | "int32";

/** Parquet kind of each canonical field (DESIGN.md, "R2 layout"). */
const KINDS: Record<keyof NotificationEvent, Kind> = {
  event_id: "string",
  message_id: "string",
  client_id: "string",
  status: "string",
  occurred_at: "timestamp",
  received_at: "timestamp",
  category: "string",
  billable: "boolean",
  pricing_type: "string",
  recipient: "string",
  country: "string",
  phone_number_id: "string",
  template: "string",
  error_code: "int32",
  error_title: "string",
  source: "string",
};

export const COLUMN_INDEX = Object.fromEntries(EVENT_COLUMNS.map((c, i) => [c, i])) as Record<keyof NotificationEvent, number>;
export const OCCURRED_AT = COLUMN_INDEX.occurred_at;
export const STATUS = COLUMN_INDEX.status;

/** Kinds in EVENT_COLUMNS order, for encoders that walk a row. */
export const COLUMN_KINDS: Kind[] = EVENT_COLUMNS.map((c) => KINDS[c]);

function element(name: keyof NotificationEvent): SchemaElement {
  // Nullability comes from the zod schema, so the file schema cannot drift from the event contract.
  const repetition_type = NotificationEvent.shape[name].safeParse(null).success ? "OPTIONAL" : "REQUIRED";
  switch (KINDS[name]) {
    case "string":
      return { name, type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" }, repetition_type };
    case "timestamp":
      return {
        name,
        type: "INT64",
        converted_type: "TIMESTAMP_MILLIS",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
        repetition_type,
      };
    case "boolean":
      return { name, type: "BOOLEAN", repetition_type };
    case "int32":
      return { name, type: "INT32", repetition_type };
  }
}

/** The Parquet schema of every lake file and of the Parquet report. */
export const LAKE_SCHEMA: SchemaElement[] = [
  { name: "root", num_children: EVENT_COLUMNS.length },
  ...EVENT_COLUMNS.map(element),
];
