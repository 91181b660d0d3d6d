import { describe, expect, it } from "vitest";
import { formatMoney, moneyDigits } from "../../pages/src/money.ts";

/** Intl puts a no-break space between the symbol and the number. */
const plain = (s: string) => s.replace(/\s/g, " ");

describe("money on the dashboard", () => {
  it("gives a column of amounts one count of decimals, as many as its most precise amount needs: 2 to 6", () => {
    expect(moneyDigits([])).toBe(2);
    expect(moneyDigits([1_000_000, 0, 50_000_000])).toBe(2);
    expect(moneyDigits([135_000, 200_000, 661_500])).toBe(4);
    expect(moneyDigits([2_003_000, 200_000])).toBe(3);
    expect(moneyDigits([-1_000_001, 10_000])).toBe(6);
  });

  it("shows every amount of a column with that count, so nothing is rounded away and the decimal marks line up", () => {
    const column = [135_000, 200_000, 661_500];
    const digits = moneyDigits(column);
    expect(column.map((m) => plain(formatMoney("pt-BR", m, "USD", digits)))).toEqual(["US$ 0,1350", "US$ 0,2000", "US$ 0,6615"]);
    // "2,003" alone reads like two thousand; next to "0,200" it is a price.
    expect([2_003_000, 200_000].map((m) => plain(formatMoney("pt-BR", m, "USD", 3)))).toEqual(["US$ 2,003", "US$ 0,200"]);
    expect(plain(formatMoney("en", 1_234_567_891, "BRL", 6))).toBe("R$1,234.567891");
    // A currency without cents still shows the column's decimals: the rate card may price fractions of a yen.
    expect(plain(formatMoney("en", 1_500_000, "JPY", 2))).toBe("¥1.50");
  });

  it("formats each amount in its own currency and locale, whichever were formatted before it", () => {
    const shown = [["en", "USD"], ["en", "BRL"], ["pt-BR", "USD"], ["en", "USD"]].map(([locale, currency]) => plain(formatMoney(locale!, 1_500_000, currency!, 2)));
    expect(shown).toEqual(["$1.50", "R$1.50", "US$ 1,50", "$1.50"]);
  });

  it("shows amounts past 2^33 units to the micro (a month's total in IDR), up to the largest safe one", () => {
    for (const [micros, shown] of [
      [9_000_000_000_000_001, "$9,000,000,000.000001"],
      [Number.MAX_SAFE_INTEGER, "$9,007,199,254.740991"],
      [-Number.MAX_SAFE_INTEGER, "-$9,007,199,254.740991"],
    ] as const) {
      expect(plain(formatMoney("en", micros, "USD", moneyDigits([micros])))).toBe(shown);
    }
  });
});
