import { Hono } from "hono";
import { ReportQuery } from "../../schema/api.ts";
import { DAY_MS } from "../../schema/time.ts";
import type { AppEnv } from "../app-env.ts";
import { audit } from "../audit.ts";
import { authenticate, requireCapability } from "../auth/middleware.ts";
import { flushBeforeLakeRead } from "../client-counters.ts";
import { requireClient } from "../client-records.ts";
import { refuseRangeOver } from "../errors.ts";
import { reportStream } from "../lake/report.ts";
import { valid } from "../validate.ts";

/**
 * Longest range of one export. Memory does not depend on it (the report streams row group by row
 * group); it bounds the R2 listings and reads one request makes.
 */
const MAX_REPORT_RANGE_MS = 366 * DAY_MS;

const CONTENT_TYPES = { csv: "text/csv; charset=utf-8", parquet: "application/vnd.apache.parquet" } as const;

/** `20261120T000000Z`: an instant that is safe in a file name. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

/** Mounted at /v1/clients: the detailed report, streamed from the lake. */
export const reports = new Hono<AppEnv>();

reports.get("/:id/report", authenticate, requireCapability("report", "id"), valid("query", ReportQuery), async (c) => {
  const id = c.req.param("id");
  const { from, to, format, times, status } = c.req.valid("query");
  refuseRangeOver(MAX_REPORT_RANGE_MS, to - from, "a report covers");
  const db = c.get("db");
  const client = await requireClient(db, id);
  const filename = `zapmeter-${id}-${stamp(from)}-${stamp(to)}.${format}`;
  const headers = { "content-type": CONTENT_TYPES[format], "content-disposition": `attachment; filename="${filename}"`, "cache-control": "no-store" };
  // A HEAD (served by this GET route) exports nothing: no flush, no audit record of an export.
  if (c.req.method === "HEAD") return c.body(null, 200, headers);
  // The report holds every event accepted before it was asked for, not only those the flush alarm
  // (up to a minute behind) has written: the client's outbox goes to the lake first.
  await flushBeforeLakeRead(c.env, client);
  const body = await reportStream(c.env.LAKE, id, { from, to, statuses: status && new Set(status) }, format, times);
  // Recipients are personal data: every export is recorded before a byte leaves.
  await audit(db, c.get("user").email, "report.export", id, { from, to, format, status: status ?? null });
  return c.body(body, 200, headers);
});
