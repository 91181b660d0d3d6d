import { and, asc, eq, isNull } from "drizzle-orm";
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

function rateCardOut(r: typeof rateCards.$inferSelect): RateCard {
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
  const validFrom = body.valid_from ? utcDayStart(body.valid_from) : 0;
  const key = and(
    body.client_id === null ? isNull(rateCards.clientId) : eq(rateCards.clientId, body.client_id),
    eq(rateCards.category, body.category),
    eq(rateCards.country, body.country),
    eq(rateCards.validFrom, validFrom),
  );
  const values = { unitPriceMicros: body.unit_price_micros, currency: body.currency };
  const [existing] = await db.select().from(rateCards).where(key);
  const [row] = existing
    ? await db.update(rateCards).set(values).where(eq(rateCards.id, existing.id)).returning()
    : await db
        .insert(rateCards)
        .values({ clientId: body.client_id, category: body.category, country: body.country, validFrom, ...values })
        .returning();
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
