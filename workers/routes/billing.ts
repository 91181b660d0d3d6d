import { Hono } from "hono";
import { BillingDateParam, BillingQuery, BillingSummaryQuery, DownloadQuery, MAX_SUMMARY_DAYS, ReconcileQuery, type BillingLine, type BillingResponse, type DownloadResponse } from "../../schema/billing.ts";
import { DAY_MS } from "../../schema/time.ts";
import type { AppEnv } from "../app-env.ts";
import { audit } from "../audit.ts";
import { authenticate, requireCapability } from "../auth/middleware.ts";
import { revisionFile } from "../billing/files.ts";
import { rateBookFor } from "../billing/rates.ts";
import { reconcileDay } from "../billing/reconcile.ts";
import { runBillingOnDemand } from "../billing/schedule.ts";
import { billingSummary, daysFinality } from "../billing/summary.ts";
import { dayLinesQuery, dayState } from "../billing/store.ts";
import { ApiError, refuseRangeOver } from "../errors.ts";
import { signFileUrl } from "../files/signed-urls.ts";
import { valid } from "../validate.ts";

/** Daily billing for finance and admins (DESIGN.md, docs/billing.md). */
export const billing = new Hono<AppEnv>();
billing.use(authenticate, requireCapability("billing"));

/**
 * A day's lines; revision 0 with no lines when the day was never computed; a client id nobody has is
 * a 404. Unpriced: the lines billed at 0 that no card of 0 prices today, either none applies or one
 * added since the day was billed (it is billed at 0 until the day is run again).
 */
billing.get("/", valid("query", BillingQuery), async (c) => {
  const { date, client_id } = c.req.valid("query");
  // The lines are read with the day's state, so they are the revision it names.
  const [{ days, rows: lines }, rates] = await Promise.all([
    daysFinality<BillingLine>(c.env.DB, date, date, client_id, dayLinesQuery(c.env.DB, date, client_id)),
    rateBookFor(c.get("db"), date),
  ]);
  const unpriced = lines
    .filter((l) => l.unit_price_micros === 0 && rates.price(l.client_id, l.category, l.country)?.unitPriceMicros !== 0)
    .map((l) => ({ client_id: l.client_id, category: l.category, country: l.country, billable_count: l.billable_count }));
  const { state, open, due } = days[0]!;
  return c.json({ date, revision: state?.revision ?? 0, computed_at: state?.computedAt ?? null, open_clients: open, due, lines, unpriced } satisfies BillingResponse);
});

/** A period's totals (a month, to invoice it), with how final each of its days is. */
billing.get("/summary", valid("query", BillingSummaryQuery), async (c) => {
  const { from, to, client_id } = c.req.valid("query");
  // Both ends are whole days included: the span is one day more than their difference.
  refuseRangeOver(MAX_SUMMARY_DAYS * DAY_MS, Date.parse(to) - Date.parse(from) + DAY_MS, "a summary covers");
  return c.json(await billingSummary(c.env.DB, from, to, client_id));
});

billing.post("/:date/run", requireCapability("admin"), valid("param", BillingDateParam), async (c) => {
  const { date } = c.req.valid("param");
  const result = await runBillingOnDemand(c.env, date, Date.now());
  await audit(c.get("db"), c.get("user").email, "billing.run", date, { revision: result.revision, changed: result.changed });
  return c.json(result);
});

/**
 * A signed, expiring link to a revision's file (the day's current one unless `revision` asks for an
 * earlier): the link serves that revision even once the day is re-billed. The signing is audited as
 * the download.
 */
billing.get("/:date/download", valid("param", BillingDateParam), valid("query", DownloadQuery), async (c) => {
  const { date } = c.req.valid("param");
  const { format, revision: asked } = c.req.valid("query");
  const revision = asked ?? (await dayState(c.env.DB, date)).revision;
  const key = await revisionFile(c.env.LAKE, date, format, revision);
  if (!key) {
    throw asked === undefined
      ? new ApiError(404, "billing_not_computed", `no billing file for ${date} yet`)
      : new ApiError(404, "revision_not_found", `no revision ${asked} of ${date}'s billing`);
  }
  // A HEAD (served by this GET route) gets no link: nothing to sign, no download to record.
  if (c.req.method === "HEAD") return c.body(null, 200, { "content-type": "application/json" });
  const { path, expiresAt } = await signFileUrl(c.env.FILE_SIGNING_SECRET, key, Date.now());
  await audit(c.get("db"), c.get("user").email, "billing.download", key, { expires_at: expiresAt, revision });
  return c.json({ url: new URL(path, c.req.url).toString(), expires_at: expiresAt, revision } satisfies DownloadResponse);
});

billing.get("/:date/reconcile", requireCapability("admin"), valid("param", BillingDateParam), valid("query", ReconcileQuery), async (c) => {
  return c.json(await reconcileDay(c.env, c.req.valid("param").date, c.req.valid("query").client_id));
});
