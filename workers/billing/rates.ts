import { lte } from "drizzle-orm";
import type { DrizzleD1Database } from "drizzle-orm/d1";
import { rateCards } from "../../schema/db.ts";
import { utcDayStart } from "../../schema/time.ts";

export interface RateCardRow {
  clientId: string | null;
  category: string;
  country: string;
  unitPriceMicros: number;
  currency: string;
  validFrom: number;
}

export interface Price {
  unitPriceMicros: number;
  currency: string;
}

/**
 * Precedence tiers, best first: the client's own card beats the default one, then an exact country
 * beats `*`. Within a tier the latest card valid on the day wins. A client-specific `*` card therefore
 * beats a default card for the exact country: a negotiated price is the client's price everywhere.
 */
const tiersOf = (clientId: string, country: string): [string | null, string][] => [
  [clientId, country],
  [clientId, "*"],
  [null, country],
  [null, "*"],
];

const cardKey = (category: string, clientId: string | null, country: string): string => JSON.stringify([category, clientId, country]);

/** Rate cards of one category, valid on a given day, ready for lookups. */
export class RateBook {
  /**
   * The latest card of each category, client (null: default) and country: a run prices a day's
   * ~60,000 lines, and a pass over the cards for each tier of each line cost lines × cards (every
   * client's own cards and every earlier price).
   */
  private readonly latest = new Map<string, RateCardRow>();

  /** `cards` must already be limited to those valid on the day (valid_from ≤ day). */
  constructor(cards: RateCardRow[]) {
    for (const card of cards) {
      const key = cardKey(card.category, card.clientId, card.country);
      const held = this.latest.get(key);
      if (!held || card.validFrom > held.validFrom) this.latest.set(key, card);
    }
  }

  /** The applicable price, or null when no card applies (the line is then billed at 0 and reported). */
  price(clientId: string, category: string, country: string): Price | null {
    for (const [client, where] of tiersOf(clientId, country)) {
      const card = this.latest.get(cardKey(category, client, where));
      if (card) return { unitPriceMicros: card.unitPriceMicros, currency: card.currency };
    }
    return null;
  }
}

/** The rate cards valid on `date` (UTC calendar date, as `valid_from` is stored). */
export async function rateBookFor(db: DrizzleD1Database, date: string): Promise<RateBook> {
  const dayStart = utcDayStart(date);
  const rows = await db
    .select({
      clientId: rateCards.clientId,
      category: rateCards.category,
      country: rateCards.country,
      unitPriceMicros: rateCards.unitPriceMicros,
      currency: rateCards.currency,
      validFrom: rateCards.validFrom,
    })
    .from(rateCards)
    .where(lte(rateCards.validFrom, dayStart));
  return new RateBook(rows);
}

/**
 * count × unit price in integer micros, or null when the result is beyond what a JS number (and D1)
 * holds exactly: refused, never rounded.
 */
export function amountMicros(count: number, unitPriceMicros: number): number | null {
  return BigInt(count) * BigInt(unitPriceMicros) <= BigInt(Number.MAX_SAFE_INTEGER) ? count * unitPriceMicros : null;
}

export type RateCardRecord = typeof rateCards.$inferSelect;
/** A card's columns under their drizzle names, for the statements written in SQL. */
const CARD_COLUMNS = "id, client_id AS clientId, category, country, unit_price_micros AS unitPriceMicros, currency, valid_from AS validFrom";

/**
 * Sets the price of a card (client or default, category, country, valid from) and returns the card
 * it replaced, if any, and the card as stored. One transaction reads the price it replaces and writes
 * the new one, so two admins putting the same card at once each see the price their own write
 * replaced. SQLite treats NULL client ids as distinct in the unique index (hence `IS`), so the write
 * is an update, else an insert.
 */
export async function putRateCard(d1: D1Database, card: Omit<RateCardRecord, "id">): Promise<{ existing?: RateCardRecord; row: RateCardRecord }> {
  const key = "client_id IS ?1 AND category = ?2 AND country = ?3 AND valid_from = ?4";
  const args = [card.clientId, card.category, card.country, card.validFrom, card.unitPriceMicros, card.currency];
  const [before, , , after] = await d1.batch<RateCardRecord>([
    d1.prepare(`SELECT ${CARD_COLUMNS} FROM rate_cards WHERE ${key}`).bind(...args.slice(0, 4)),
    d1.prepare(`UPDATE rate_cards SET unit_price_micros = ?5, currency = ?6 WHERE ${key}`).bind(...args),
    d1
      .prepare(
        `INSERT INTO rate_cards (client_id, category, country, valid_from, unit_price_micros, currency)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM rate_cards WHERE ${key})`,
      )
      .bind(...args),
    d1.prepare(`SELECT ${CARD_COLUMNS} FROM rate_cards WHERE ${key}`).bind(...args.slice(0, 4)),
  ]);
  return { existing: before!.results[0], row: after!.results[0]! };
}
