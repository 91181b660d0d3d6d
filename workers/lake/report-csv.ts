import type { ReportTimes } from "../../schema/api.ts";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { minuteOf } from "../../schema/time.ts";
import { COLUMN_KINDS, type EventRow, type EventValue } from "./columns.ts";
import { defuseFormula, quoteField } from "../../schema/csv-cells.ts";


/**
 * Epoch ms as `toISOString` writes it (UTC, milliseconds), with the `YYYY-MM-DDTHH:MM:` part kept
 * per minute: a report's rows come in time order, and `toISOString` on every timestamp was about
 * half of formatting a row.
 */
function isoTimestamps(): (ms: number) => string {
  let minute = Number.NaN;
  let prefix = "";
  return (ms) => {
    const m = minuteOf(ms);
    if (m !== minute) {
      minute = m;
      prefix = new Date(m).toISOString().slice(0, 17);
    }
    const inMinute = ms - m;
    const s = Math.floor(inMinute / 1000);
    const milli = inMinute - s * 1000;
    return `${prefix}${s < 10 ? "0" : ""}${s}.${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
  };
}

/** The header line of the detailed report, in the canonical column order. */
export const CSV_HEADER = `${EVENT_COLUMNS.join(",")}\r\n`;

/**
 * A formatter per column, in EVENT_COLUMNS order: booleans true/false, nulls empty, empty text `""`
 * (as PostgreSQL's COPY writes them, so the two stay apart, as in the Parquet), times as `times`
 * says. `iso` is the spreadsheet form (what the dashboard downloads): its text cells are defused too.
 */
function columnFormatters(times: ReportTimes): ((v: EventValue) => string)[] {
  const cell = times === "iso" ? (v: string) => quoteField(defuseFormula(v)) : quoteField;
  const text = (v: string) => (v === "" ? '""' : cell(v));
  return COLUMN_KINDS.map((kind) => {
    if (kind === "timestamp" && times === "iso") {
      const iso = isoTimestamps();
      return (v) => (v === null ? "" : iso(v as number));
    }
    return (v) => (v === null ? "" : typeof v === "string" ? text(v) : String(v));
  });
}

/**
 * Rows as CSV lines (CRLF-terminated, as RFC 4180 says), times as the canonical epoch ms or ISO-8601.
 * A line is joined from its fields: appended field by field it stays a rope of ~30 pieces for the
 * encoder to flatten, about twice as slow.
 */
export function csvLines(rows: EventRow[], times: ReportTimes): string {
  const format = columnFormatters(times);
  let out = "";
  for (const r of rows) out += `${r.map((v, i) => format[i]!(v)).join(",")}\r\n`;
  return out;
}
