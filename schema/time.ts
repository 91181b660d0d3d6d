/** Time helpers shared by every runtime. At rest times are epoch ms UTC; zones appear only here. */

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** Start of the UTC minute containing `ms`. */
export function minuteOf(ms: number): number {
  return ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
}

const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:(Z)|([+\- ])(\d{2})(?::?(\d{2}))?)?)?$/i;

/**
 * An instant as people and tools write ISO-8601 in a query string, in epoch ms: a date (its midnight
 * UTC); a date and time with or without seconds and fraction, `T` or a space between them; `Z`,
 * `±HH:MM`, `±HHMM`, `±HH` or no zone (UTC). A `+` that the query string decoded to a space is read as
 * `+`. Null when the text is not such an instant or names no real date and time (2026-02-30).
 */
export function parseInstant(text: string): number | null {
  const m = INSTANT.exec(text);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number];
  const utc = Date.UTC(y, mo - 1, d, h, mi, s, Number((m[7] ?? "").padEnd(3, "0").slice(0, 3)));
  // Date.UTC reads years 0–99 as 1900–1999; setUTCFullYear takes them as written.
  const wall = y < 100 ? new Date(utc).setUTCFullYear(y) : utc;
  const t = new Date(wall);
  const real = t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === s;
  const [oh, om] = [Number(m[10] ?? 0), Number(m[11] ?? 0)];
  if (!real || oh > 23 || om > 59) return null;
  return wall - (m[9] === "-" ? -1 : 1) * (oh * 60 + om) * MINUTE_MS;
}

/** `YYYY-MM-DD` of the UTC day containing `ms`. */
export function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Epoch ms of 00:00 UTC of a calendar `date` (YYYY-MM-DD). */
export function utcDayStart(date: string): number {
  return Date.parse(`${date}T00:00:00Z`);
}

/** A calendar `date` (YYYY-MM-DD) shifted by whole days. */
export function addDays(date: string, days: number): string {
  return utcDate(utcDayStart(date) + days * DAY_MS);
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-CA", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

function localParts(ms: number, timeZone: string): Record<string, number> {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(ms)) if (p.type !== "literal") parts[p.type] = Number(p.value);
  return parts;
}

/** Offset of `timeZone` from UTC at instant `ms`, in ms (e.g. -3 h for America/Sao_Paulo). */
function offsetAt(ms: number, timeZone: string): number {
  const p = localParts(ms, timeZone);
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return asUtc - (ms - (((ms % 1000) + 1000) % 1000));
}

/**
 * Every zone's offset is a whole number of quarter hours since 2000, and almost every change of it
 * falls on a quarter hour in UTC, so one lookup serves a whole quarter hour: within it the offset, and
 * so the local date (local midnights fall on quarter hours too), stays the same. `formatToParts` costs
 * microseconds and ingest asks for a local date per billable event. The exceptions changed at 00:01
 * local (St. John's, Goose Bay and Moncton until 2011, Gaza in 2010–2011, Casey in 2020–2022): a
 * quarter hour whose last second has another offset than its first is looked up instant by instant.
 */
const QUARTER_HOUR_MS = 15 * MINUTE_MS;
const QUARTER_CACHE_LIMIT = 10_000;
const quarterDates = new Map<string, string>();

/** `YYYY-MM-DD` of the local day in `timeZone` containing `ms`. */
export function localDate(ms: number, timeZone: string): string {
  const quarter = Math.floor(ms / QUARTER_HOUR_MS);
  const key = `${timeZone}|${quarter}`;
  let date = quarterDates.get(key);
  if (date === undefined) {
    if (quarterDates.size >= QUARTER_CACHE_LIMIT) quarterDates.clear();
    const start = quarter * QUARTER_HOUR_MS;
    const offset = offsetAt(start, timeZone);
    if (offsetAt(start + QUARTER_HOUR_MS - 1_000, timeZone) !== offset) return utcDate(ms + offsetAt(ms, timeZone));
    date = utcDate(start + offset);
    quarterDates.set(key, date);
  }
  return date;
}

/**
 * Local day starts by zone and date: billing asks for the day of each of 10,000 clients, in a handful
 * of zones, several times a tick, every billed ingest call for its day's due time, and each costs two
 * `formatToParts` and more (~9 µs).
 */
const DAY_START_CACHE_LIMIT = 10_000;
const dayStarts = new Map<string, number>();

/**
 * Epoch ms of the first instant of the local day `date` (YYYY-MM-DD) in `timeZone`: its midnight, or
 * where the clocks jump over midnight (Santiago, Havana, the Azores spring forward at 00:00), the jump;
 * where midnight comes twice (clocks back at 01:00), the first.
 */
export function localDayStart(date: string, timeZone: string): number {
  const key = `${timeZone}|${date}`;
  let start = dayStarts.get(key);
  if (start === undefined) {
    if (dayStarts.size >= DAY_START_CACHE_LIMIT) dayStarts.clear();
    dayStarts.set(key, (start = findLocalDayStart(date, timeZone)));
  }
  return start;
}

function findLocalDayStart(date: string, timeZone: string): number {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const midnightAsUtc = Date.UTC(y, m - 1, d);
  // Two passes settle the offset when it changes near midnight but not over it; the quarter-hour
  // steps after them settle the rest, as every offset is whole quarter hours, so every local midnight
  // falls on a quarter hour.
  let t = midnightAsUtc - offsetAt(midnightAsUtc, timeZone);
  t = midnightAsUtc - offsetAt(t, timeZone);
  while (localDate(t, timeZone) < date) t += QUARTER_HOUR_MS;
  while (localDate(t - QUARTER_HOUR_MS, timeZone) === date) t -= QUARTER_HOUR_MS;
  return t;
}

/** [start, end) in epoch ms of the local day `date` in `timeZone`. */
export function localDayRange(date: string, timeZone: string): [number, number] {
  return [localDayStart(date, timeZone), localDayStart(addDays(date, 1), timeZone)];
}
