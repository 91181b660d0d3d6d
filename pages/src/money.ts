/** Amounts are integer micros (millionths of the currency unit) from the API to the page. */
const MICROS_DIGITS = 6;
/** Cents at least, even where every amount is whole: a column of money reads as money. */
const MIN_DIGITS = 2;

/**
 * The fraction digits that show every amount of a column exactly: as many as its most precise amount
 * needs, at least 2 and at most 6. One count for the whole column, so its decimal marks line up and
 * "2,003" cannot be read as two thousand next to "0,20".
 */
export function moneyDigits(micros: Iterable<number>): number {
  let digits = MIN_DIGITS;
  for (const amount of micros) {
    let fraction = Math.abs(amount) % 1_000_000;
    if (fraction === 0) continue;
    let needed = MICROS_DIGITS;
    while (fraction % 10 === 0) {
      fraction /= 10;
      needed -= 1;
    }
    digits = Math.max(digits, needed);
  }
  return digits;
}

/** `micros` of `currency` in `locale`'s notation with exactly `digits` fraction digits (moneyDigits of its column). */
export function formatMoney(locale: string, micros: number, currency: string, digits: number): string {
  return new Intl.NumberFormat(locale, { style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(
    micros / 1_000_000,
  );
}
