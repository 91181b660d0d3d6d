import { parsePhoneNumberFromString } from "libphonenumber-js/min";

/** ISO 3166-1 alpha-2 billing market of an E.164 number (digits), or null when unknown. */
export function countryOf(recipientDigits: string): string | null {
  return parsePhoneNumberFromString(`+${recipientDigits}`)?.country ?? null;
}
