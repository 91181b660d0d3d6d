import { asc } from "drizzle-orm";
import { Hono } from "hono";
import { RateCardRequest, type RateCard } from "../../../schema/api.ts";
import { rateCards } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { putRateCard, type RateCardRecord } from "../../billing/rates.ts";
import { requireClient } from "../../client-records.ts";
import { valid } from "../../validate.ts";
import { utcDate, utcDayStart } from "../../../schema/time.ts";

/** Prices per billable message, default (client_id null) or per client. */
export const adminRateCards = new Hono<AppEnv>();

adminRateCards.get("/", async (c) => {
  const rows = await c.get("db").select().from(rateCards).orderBy(asc(rateCards.id));
  return c.json({ rate_cards: rows.map(rateCardOut) });
});

function rateCardOut(r: RateCardRecord): RateCard {
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

/** Sets a price; without `valid_from` it is the price for all days (valid from 1970-01-01). */
adminRateCards.put("/", valid("json", RateCardRequest), async (c) => {
  const body = c.req.valid("json");
  const db = c.get("db");
  if (body.client_id !== null) await requireClient(db, body.client_id);
  const { existing, row } = await putRateCard(c.env.DB, {
    clientId: body.client_id,
    category: body.category,
    country: body.country,
    validFrom: body.valid_from ? utcDayStart(body.valid_from) : 0,
    unitPriceMicros: body.unit_price_micros,
    currency: body.currency,
  });
  // The price before and after: a correction re-bills past days, and finance must be able to see why.
  await audit(db, c.get("user").email, "rate_card.put", body.client_id ?? "*", {
    category: body.category,
    country: body.country,
    valid_from: rateCardOut(row).valid_from,
    unit_price_micros: body.unit_price_micros,
    currency: body.currency,
    previous: existing ? { unit_price_micros: existing.unitPriceMicros, currency: existing.currency } : null,
  });
  return c.json(rateCardOut(row));
});
