/** Time helpers shared by every runtime. At rest times are epoch ms UTC; zones appear only here. */

export const MINUTE_MS = 60_000;
export const DAY_MS = 86_400_000;

/** Start of the UTC minute containing `ms`. */
export function minuteOf(ms: number): number {
  return ms - (((ms % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
}

/** `YYYY-MM-DD` of the UTC day containing `ms`. */
export function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
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
 * Every zone's offset is a whole number of quarter hours since 2000 and changes only at instants that
 * are quarter hours in UTC, so one lookup serves a whole quarter hour: within it the offset, and so the
 * local date (local midnights fall on quarter hours too), stays the same. `formatToParts` costs
 * microseconds and ingest asks for a local date per billable event.
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
    date = utcDate(start + offsetAt(start, timeZone));
    quarterDates.set(key, date);
  }
  return date;
}

/** Epoch ms of local midnight starting `date` (YYYY-MM-DD) in `timeZone`. */
export function localDayStart(date: string, timeZone: string): number {
  const [y, m, d] = date.split("-").map(Number) as [number, number, number];
  const midnightAsUtc = Date.UTC(y, m - 1, d);
  // Two passes settle the offset even when it changes near midnight (DST).
  let guess = midnightAsUtc - offsetAt(midnightAsUtc, timeZone);
  guess = midnightAsUtc - offsetAt(guess, timeZone);
  return guess;
}

/** [start, end) in epoch ms of the local day `date` in `timeZone`. */
export function localDayRange(date: string, timeZone: string): [number, number] {
  const next = new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
  return [localDayStart(date, timeZone), localDayStart(next, timeZone)];
}
