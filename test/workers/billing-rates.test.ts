import { describe, expect, it } from "vitest";
import { amountMicros, RateBook, type RateCardRow } from "../../workers/billing/rates.ts";
import { priceLines } from "../../workers/billing/run.ts";
import { ApiError } from "../../workers/errors.ts";
import { createClient, unique } from "./helpers.ts";
import { billingOf, ingest, rateCard, runDay, status } from "./billing-fixtures.ts";

const card = (over: Partial<RateCardRow>): RateCardRow => ({
  clientId: null,
  category: "marketing",
  country: "*",
  unitPriceMicros: 1,
  currency: "BRL",
  validFrom: 0,
  ...over,
});

describe("rate-card precedence", () => {
  const book = new RateBook([
    card({ unitPriceMicros: 10 }),
    card({ country: "BR", unitPriceMicros: 20 }),
    card({ clientId: "acme", unitPriceMicros: 30 }),
    card({ clientId: "acme", country: "BR", unitPriceMicros: 40 }),
    card({ clientId: "acme", country: "BR", unitPriceMicros: 45, validFrom: Date.UTC(2026, 0, 1) }),
    card({ category: "utility", country: "US", unitPriceMicros: 5, currency: "USD" }),
  ]);

  it("client-specific over default, exact country over *, latest valid_from first", () => {
    expect(book.price("acme", "marketing", "BR")).toEqual({ unitPriceMicros: 45, currency: "BRL" });
    expect(book.price("acme", "marketing", "AR")).toEqual({ unitPriceMicros: 30, currency: "BRL" });
    expect(book.price("globex", "marketing", "BR")).toEqual({ unitPriceMicros: 20, currency: "BRL" });
    expect(book.price("globex", "marketing", "AR")).toEqual({ unitPriceMicros: 10, currency: "BRL" });
    expect(book.price("acme", "utility", "US")).toEqual({ unitPriceMicros: 5, currency: "USD" });
    expect(book.price("acme", "utility", "BR")).toBeNull();
    expect(book.price("acme", "unknown", "ZZ")).toBeNull();
  });

  it("takes the latest card of a tier whatever order the cards come in", () => {
    const older = card({ clientId: "acme", country: "BR", unitPriceMicros: 40 });
    const newer = card({ clientId: "acme", country: "BR", unitPriceMicros: 45, validFrom: Date.UTC(2026, 0, 1) });
    for (const cards of [[older, newer], [newer, older]]) expect(new RateBook(cards).price("acme", "marketing", "BR")).toEqual({ unitPriceMicros: 45, currency: "BRL" });
  });

  it("keeps the cards of a client whose id is \"null\" (a valid id) apart from the default cards", () => {
    const cards = [card({ unitPriceMicros: 10 }), card({ clientId: "null", unitPriceMicros: 99 })];
    for (const order of [cards, [...cards].reverse()]) {
      const book = new RateBook(order);
      expect([book.price("null", "marketing", "BR"), book.price("globex", "marketing", "BR")]).toEqual([
        { unitPriceMicros: 99, currency: "BRL" },
        { unitPriceMicros: 10, currency: "BRL" },
      ]);
    }
  });

  it("multiplies in integers and refuses amounts beyond exact range", () => {
    expect(amountMicros(3, 62_500)).toBe(187_500);
    expect(amountMicros(0, 62_500)).toBe(0);
    expect(amountMicros(100_000_000, 1_000_000_000_000)).toBeNull();
    expect(amountMicros(1, Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("refuses a line beyond exact range as the caller's to fix (422, naming it), not as a retry", () => {
    const client = { id: "acme", shards: 1, timezone: "UTC", currency: "BRL" };
    const huge = new RateBook([card({ unitPriceMicros: 1_000_000_000_000 })]);
    let refusal: unknown;
    try {
      priceLines(client, [{ category: "marketing", country: "BR", count: 9_008 }], huge, []);
    } catch (e) {
      refusal = e;
    }
    expect(refusal).toBeInstanceOf(ApiError);
    expect(refusal).toMatchObject({ status: 422, code: "amount_out_of_range", message: expect.stringContaining("acme marketing/BR") });
    expect(priceLines(client, [{ category: "marketing", country: "BR", count: 9_007 }], huge, [])[0]!.amountMicros).toBe(9_007_000_000_000_000);
  });
});

describe("rate cards stored in D1", () => {
  it("bills each client at its own card, others at the default, by the card valid on the day", async () => {
    const vip = await createClient();
    const plain = await createClient();
    await rateCard({ client_id: null, category: "utility", country: "*", unit_price_micros: 8_000 });
    await rateCard({ client_id: null, category: "utility", country: "BR", unit_price_micros: 7_000 });
    await rateCard({ client_id: vip.id, category: "utility", country: "*", unit_price_micros: 5_000 });
    await rateCard({ client_id: null, category: "utility", country: "BR", unit_price_micros: 7_500, valid_from: "2026-11-15" });
    for (const day of ["2026-11-14", "2026-11-15"]) {
      for (const c of [vip, plain]) {
        await ingest([
          status(c.id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`), { category: "utility" }),
          status(c.id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`), { category: "utility", country: "MX" }),
        ]);
      }
      await runDay(day);
    }
    const prices = async (day: string) =>
      (await billingOf(day)).lines.map((l) => [l.client_id === vip.id ? "vip" : "plain", l.country, l.unit_price_micros]);
    expect(await prices("2026-11-14")).toEqual(
      [vip.id, plain.id].sort().flatMap((id) =>
        id === vip.id ? [["vip", "BR", 5_000], ["vip", "MX", 5_000]] : [["plain", "BR", 7_000], ["plain", "MX", 8_000]],
      ),
    );
    expect((await prices("2026-11-15")).filter(([who]) => who === "plain")).toEqual([["plain", "BR", 7_500], ["plain", "MX", 8_000]]);
  });
});
