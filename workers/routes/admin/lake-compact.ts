import { Hono } from "hono";
import { LakeCompactQuery, type LakeCompactResponse } from "../../../schema/api.ts";
import { utcDate } from "../../../schema/time.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { compactClientNow } from "../../client-counters.ts";
import { compactionTotals } from "../../lake/compaction.ts";
import { requireClient } from "../../client-records.ts";
import { ApiError } from "../../errors.ts";
import { valid } from "../../validate.ts";

/** A lake partition compacted on demand: a day the nightly retries gave up on, once its bad file is removed. */
export const adminLakeCompact = new Hono<AppEnv>();

/**
 * Compacts one client's partition of a closed UTC day through its shard 0, in turn with that
 * object's own compactions. 409 when a file is not Parquet (no retry reads it: the operator removes
 * it first); 503 when R2 or the object failed (retry).
 */
adminLakeCompact.post("/", valid("query", LakeCompactQuery), async (c) => {
  const { client_id: clientId, date } = c.req.valid("query");
  // Today's partition still gets a file a minute: compacted now, it would be small files again by
  // night. The nightly run takes it once it is closed.
  if (date >= utcDate(Date.now())) throw new ApiError(400, "day_not_closed", `${date} is not a closed UTC day: its partition is still being written`);
  const db = c.get("db");
  const client = await requireClient(db, clientId);
  const actor = c.get("user").email;
  const done = await compactClientNow(c.env, client, date).catch(async (err: unknown) => {
    await audit(db, actor, "lake.compact", clientId, { date, failed: "compaction_failed" });
    throw new ApiError(503, "compaction_failed", "the partition could not be compacted; its files stay readable; retry", undefined, err);
  });
  if ("not_parquet" in done) {
    await audit(db, actor, "lake.compact", clientId, { date, failed: "not_parquet" });
    throw new ApiError(409, "not_parquet", `${done.not_parquet} is not a Parquet file; remove it, then compact again`, { key: done.not_parquet });
  }
  const body: LakeCompactResponse = compactionTotals(done.compacted);
  await audit(db, actor, "lake.compact", clientId, { date, files: body.files.length, replaced: body.replaced, rows: body.rows });
  return c.json(body);
});
