import { getCountries, getCountryCallingCode, parsePhoneNumberFromString } from "libphonenumber-js/min";
import { describe, expect, it } from "vitest";
import { COUNTRY_CODES } from "../../schema/countries.ts";
import { Country } from "../../schema/event.ts";
import { countryOf } from "../../workers/ingest/country.ts";

/** Deterministic digits (xorshift32), so a failure names a number that fails again. */
function digitSource(seed: number): () => string {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return String((x >>> 0) % 10);
  };
}

const parserCountry = (digits: string) => parsePhoneNumberFromString(`+${digits}`)?.country ?? null;

describe("the country codes a country may hold", () => {
  it("are ISO 3166-1 alpha-2's 249 and every country a phone number resolves to, each once", () => {
    expect(new Set(COUNTRY_CODES).size).toBe(252);
    expect(getCountries().filter((c) => !(COUNTRY_CODES as readonly string[]).includes(c))).toEqual([]);
    expect(["BR", "GB", "US", "XK", "AQ"].map((c) => Country.safeParse(c).success)).toEqual([true, true, true, true, true]);
    // Two letters that are no country's code: a rate card for UK would never meet the GB of a +44 number.
    expect(["UK", "XX", "ZZ", "br", "BRA"].map((c) => Country.safeParse(c).success)).toEqual([false, false, false, false, false]);
  });
});

describe("countryOf", () => {
  it("answers what the full parser answers, for every calling code and every length a recipient may have", () => {
    const next = digitSource(0x2545f491);
    const codes = [...new Set(getCountries().map((c) => getCountryCallingCode(c)))];
    const mismatches: string[] = [];
    for (const code of codes) {
      for (let length = Math.max(6, code.length + 1); length <= 15; length++) {
        const rest = length - code.length;
        const numbers = [
          code + "0".repeat(rest),
          code + "9".repeat(rest),
          ...Array.from({ length: 20 }, () => code + Array.from({ length: rest }, next).join("")),
        ];
        for (const n of numbers) if (countryOf(n) !== parserCountry(n)) mismatches.push(`${n}: ${countryOf(n)} vs ${parserCountry(n)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("tells apart the countries that share a calling code", () => {
    expect(countryOf("5511987654321")).toBe("BR");
    expect(countryOf("12025550123")).toBe("US");
    expect(countryOf("14165550123")).toBe("CA");
    expect(countryOf("442071838750")).toBe("GB");
    expect(countryOf("447781123456")).toBe("GG");
    expect(countryOf("77012345678")).toBe("KZ");
    expect(countryOf("79123456789")).toBe("RU");
  });

  it("is null where no country owns the number", () => {
    expect(countryOf("80012345678")).toBeNull();
    expect(countryOf("999123456789")).toBeNull();
  });

  it("takes a business-scoped user id's country, and none that is not a country", () => {
    expect(countryOf("BR.1502576394655843")).toBe("BR");
    expect(countryOf("US.ENT.11815799212886844830")).toBe("US");
    expect(countryOf("ZZ.1502576394655843")).toBeNull();
  });
});
