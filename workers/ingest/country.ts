import { getCountries, getCountryCallingCode, parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/min";

/**
 * Calling codes that belong to one country only (55 → BR; not 1, 44, 7…). For those the country is
 * the code's, whatever the rest of the number, which is what the parser answers too (test/node/
 * country.test.ts compares both over every calling code); a full parse was ~10 % of a webhook's CPU.
 */
const SOLE_COUNTRY = (() => {
  const byCode = new Map<string, CountryCode[]>();
  for (const country of getCountries()) {
    const code = getCountryCallingCode(country);
    byCode.set(code, [...(byCode.get(code) ?? []), country]);
  }
  return new Map([...byCode].filter(([, countries]) => countries.length === 1).map(([code, [country]]) => [code, country!]));
})();

/** Longest calling code (digits). */
const MAX_CALLING_CODE = 3;

const COUNTRIES: ReadonlySet<string> = new Set(getCountries());

/**
 * ISO 3166-1 alpha-2 billing market of a recipient (schema/event.ts `Recipient`): of an E.164 number
 * (6 to 15 digits), or the country a business-scoped user id starts with; null when unknown.
 */
export function countryOf(recipient: string): string | null {
  if (recipient[2] === ".") {
    const country = recipient.slice(0, 2);
    return COUNTRIES.has(country) ? country : null;
  }
  // Calling codes are prefix-free: the first prefix that is one is the number's.
  for (let n = 1; n <= MAX_CALLING_CODE; n++) {
    const sole = SOLE_COUNTRY.get(recipient.slice(0, n));
    if (sole) return sole;
  }
  return parsePhoneNumberFromString(`+${recipient}`)?.country ?? null;
}
