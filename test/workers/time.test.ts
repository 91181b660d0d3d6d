import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addDays, localDate, localDayRange, localDayStart, parseInstant } from "../../schema/time.ts";

/** The local date straight from ICU, without the offset cache. */
function icuDate(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
}

const ZONES = ["UTC", "America/Sao_Paulo", "America/New_York", "Europe/London", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "Africa/Casablanca", "America/Santiago", "America/Havana", "Atlantic/Azores", "Asia/Gaza"];
const EPOCH_2000 = Date.UTC(2000, 0, 1);
const EPOCH_2100 = Date.UTC(2100, 0, 1);

describe("local dates", () => {
  it("match ICU at any instant in any zone, including around DST changes and half/quarter-hour offsets", () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: EPOCH_2000, max: EPOCH_2100 }), (zone, ms) => {
        expect(localDate(ms, zone)).toBe(icuDate(ms, zone));
      }),
      { numRuns: 3_000 },
    );
  });

  it("match ICU in the minutes after clocks went back at 00:01, off the quarter hours (St. John's, Goose Bay, Moncton until 2011)", () => {
    // The clocks went from 00:01 back to 23:01 of the day before, at an instant 1 minute past a quarter
    // hour in UTC: a quarter hour's local date taken from its first instant named the next day.
    const fallBacks = [
      ["America/St_Johns", "2007-11-04T02:31:00Z"],
      ["America/Goose_Bay", "2010-11-07T03:01:00Z"],
      ["America/Moncton", "2006-10-29T03:01:00Z"],
    ] as const;
    for (const [zone, at] of fallBacks) {
      for (let ms = Date.parse(at) - 30 * 60_000; ms < Date.parse(at) + 75 * 60_000; ms += 60_000) {
        expect(localDate(ms, zone), `${zone} ${new Date(ms).toISOString()}`).toBe(icuDate(ms, zone));
      }
    }
    expect(localDate(Date.parse("2007-11-04T02:35:00Z"), "America/St_Johns")).toBe("2007-11-03");
  });

  it("change exactly at local midnight, so a local day's range is 23 or 25 hours on a DST change", () => {
    for (const zone of ZONES) {
      for (const day of ["2026-03-08", "2026-03-29", "2026-10-04", "2026-10-25", "2026-11-01", "2026-11-20"]) {
        const start = localDayStart(day, zone);
        expect(localDate(start, zone)).toBe(day);
        expect(localDate(start - 1, zone) < day).toBe(true);
        const [from, to] = localDayRange(day, zone);
        expect([from, localDate(to - 1, zone), localDate(to, zone)]).toEqual([start, day, addDays(day, 1)]);
      }
    }
    expect(localDayRange("2026-03-08", "America/New_York")).toEqual([Date.parse("2026-03-08T05:00:00Z"), Date.parse("2026-03-09T04:00:00Z")]);
    expect(localDayRange("2026-10-25", "Europe/London")).toEqual([Date.parse("2026-10-24T23:00:00Z"), Date.parse("2026-10-26T00:00:00Z")]);
  });

  it("start a day where the clocks jump over its midnight at the jump, and a day whose midnight comes twice at the first", () => {
    expect(localDayStart("2024-09-08", "America/Santiago")).toBe(Date.parse("2024-09-08T04:00:00Z"));
    expect(localDayStart("2018-11-04", "America/Sao_Paulo")).toBe(Date.parse("2018-11-04T03:00:00Z"));
    expect(localDayStart("2024-03-10", "America/Havana")).toBe(Date.parse("2024-03-10T05:00:00Z"));
    expect(localDayStart("2024-03-31", "Atlantic/Azores")).toBe(Date.parse("2024-03-31T01:00:00Z"));
    // Amman (UTC+2/+3) set its clocks back from 01:00 to 00:00 until 2022: its midnight came twice, and
    // the local midnight read with the offset of UTC's midnight is the second (22:00Z), an hour late.
    expect(localDayStart("2008-10-31", "Asia/Amman")).toBe(Date.parse("2008-10-30T21:00:00Z"));
    expect(localDayRange("2008-10-30", "Asia/Amman")[1]).toBe(Date.parse("2008-10-30T21:00:00Z"));
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: 0, max: 40 * 366 }), (zone, n) => {
        const day = addDays("2000-01-01", n);
        const start = localDayStart(day, zone);
        expect([icuDate(start, zone), icuDate(start - 1, zone) < day]).toEqual([day, true]);
      }),
      { numRuns: 3_000 },
    );
  });
});

describe("query instants", () => {
  it("read every full ISO-8601 date-time with a zone as Date.parse does", () => {
    const offsets = fc.tuple(fc.constantFrom("+", "-"), fc.integer({ min: 0, max: 14 }), fc.constantFrom(0, 30, 45));
    fc.assert(
      fc.property(fc.integer({ min: EPOCH_2000, max: EPOCH_2100 }), offsets, (ms, [sign, h, m]) => {
        const zone = `${sign}${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
        const text = `${new Date(ms).toISOString().slice(0, 23)}${zone}`;
        expect(parseInstant(text)).toBe(Date.parse(text));
      }),
      { numRuns: 2_000 },
    );
  });

  it("read the shorter forms people write: a date, no seconds, no zone (UTC), compact offsets, a decoded +", () => {
    const noon = Date.parse("2026-11-20T12:00:00Z");
    expect(parseInstant("2026-11-20")).toBe(Date.parse("2026-11-20T00:00:00Z"));
    expect(parseInstant("2026-11-20T12:00")).toBe(noon);
    expect(parseInstant("2026-11-20T12:00Z")).toBe(noon);
    expect(parseInstant("2026-11-20 12:00:00")).toBe(noon);
    expect(parseInstant("2026-11-20t12:00:00z")).toBe(noon);
    expect(parseInstant("2026-11-20T09:00:00-0300")).toBe(noon);
    expect(parseInstant("2026-11-20T15:00:00+03")).toBe(noon);
    expect(parseInstant("2026-11-20T15:00:00 03:00")).toBe(noon);
    expect(parseInstant("2026-11-20T12:00:00.5Z")).toBe(noon + 500);
    expect(parseInstant("2026-11-20T12:00:00.123456789Z")).toBe(noon + 123);
  });

  it("read years 0000–0099 as written, not as 1900–1999", () => {
    for (const text of ["0000-01-01T00:00:00Z", "0050-06-15T12:30:00.250+02:00", "0099-12-31T23:59:59Z", "0100-01-01"]) {
      expect(parseInstant(text), text).toBe(Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text));
    }
  });

  it("refuse what names no real instant or is not ISO-8601", () => {
    for (const text of ["", "2026-02-30", "2026-11-20T24:00:00Z", "2026-11-20T12:60Z", "2026-11-20T12:00:00+25:00", "2026-11-20T12:00:00+24:00", "2026-11-20T12:00:00+05:60", "2026-11-20T12:00:00-0060", "20261120", "1763700000000", "yesterday", "2026-11-20T12Z", "2026-11-20T12:00:00 "]) {
      expect(parseInstant(text), text).toBeNull();
    }
  });
});
