import { asc } from "drizzle-orm";
import { Hono } from "hono";
import { RateCardRequest, type RateCard } from "../../../schema/api.ts";
import { rateCards } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { requireClient } from "../../client-records.ts";
import { valid } from "../../validate.ts";
import { utcDate, utcDayStart } from "../../../schema/time.ts";

/** Prices per billable message, default (client_id null) or per client. */
export const adminRateCards = new Hono<AppEnv>();

adminRateCards.get("/", async (c) => {
  const rows = await c.get("db").select().from(rateCards).orderBy(asc(rateCards.id));
  return c.json({ rate_cards: rows.map(rateCardOut) });
});

function rateCardOut(r: Card): RateCard {
  return {
    id: r.id,
    client_id: r.clientId,
    category: r.category,
    country: r.country,
    unit_price_micros: r.unitPriceMicros,
    currency: r.currency,
    valid_from: utcDate(r.validFrom),
  };
}

type Card = typeof rateCards.$inferSelect;
/** A card's columns under their drizzle names, for the statements written in SQL. */
const CARD_COLUMNS = "id, client_id AS clientId, category, country, unit_price_micros AS unitPriceMicros, currency, valid_from AS validFrom";

/** Sets a price; without `valid_from` it is the price for all days (valid from 1970-01-01). */
adminRateCards.put("/", valid("json", RateCardRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if (body.client_id !== null) await requireClient(db, body.client_id);
  const validFrom = body.valid_from ? utcDayStart(body.valid_from) : 0;
  // One transaction reads the price it replaces and writes the new one, so two admins putting the
  // same card at once each audit the price their own write replaced. SQLite treats NULL client ids as
  // distinct in the unique index (hence `IS`), so the write is an update, else an insert.
  const key = "client_id IS ?1 AND category = ?2 AND country = ?3 AND valid_from = ?4";
  const args = [body.client_id, body.category, body.country, validFrom, body.unit_price_micros, body.currency];
  const d1 = c.env.DB;
  const [before, , , after] = await d1.batch<Card>([
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
  const existing = before!.results[0];
  const row = after!.results[0];
  // The price before and after: a correction re-bills past days, and finance must be able to see why.
  await audit(db, c.get("user").email, "rate_card.put", body.client_id ?? "*", {
    category: body.category,
    country: body.country,
    valid_from: rateCardOut(row!).valid_from,
    unit_price_micros: body.unit_price_micros,
    currency: body.currency,
    previous: existing ? { unit_price_micros: existing.unitPriceMicros, currency: existing.currency } : null,
  });
  return c.json(rateCardOut(row!));
});
