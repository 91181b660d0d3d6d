import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { localDate, localDayStart } from "../../schema/time.ts";

/** The local date straight from ICU, without the offset cache. */
function icuDate(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
}

const ZONES = ["UTC", "America/Sao_Paulo", "America/New_York", "Europe/London", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns", "Africa/Casablanca"];
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

  it("change exactly at local midnight", () => {
    for (const zone of ZONES) {
      for (const day of ["2026-03-08", "2026-03-29", "2026-10-04", "2026-10-25", "2026-11-01", "2026-11-20"]) {
        const start = localDayStart(day, zone);
        expect(localDate(start, zone)).toBe(day);
        expect(localDate(start - 1, zone) < day).toBe(true);
      }
    }
  });
});
