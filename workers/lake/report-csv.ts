import { EVENT_COLUMNS } from "../../schema/event.ts";
import { COLUMN_KINDS, type EventRow, type EventValue } from "./columns.ts";

const NEEDS_QUOTES = /[",\r\n]/;

/** One RFC 4180 field: quoted only when it holds a quote, comma or line break; quotes doubled. */
function field(v: string): string {
  return NEEDS_QUOTES.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** Times as ISO-8601 UTC with milliseconds; booleans true/false; nulls empty. */
function text(v: EventValue, kind: (typeof COLUMN_KINDS)[number]): string {
  if (v === null) return "";
  if (kind === "timestamp") return new Date(v as number).toISOString();
  return field(String(v));
}

/** The header line of the detailed report, in the canonical column order. */
export const CSV_HEADER = `${EVENT_COLUMNS.join(",")}\r\n`;

/** Rows as CSV lines (CRLF-terminated, as RFC 4180 says). */
export function csvLines(rows: EventRow[]): string {
  let out = "";
  for (const r of rows) out += `${r.map((v, i) => text(v, COLUMN_KINDS[i]!)).join(",")}\r\n`;
  return out;
}
