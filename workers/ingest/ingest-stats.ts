import type { Context } from "hono";
import { INGEST_STATS_HEADERS } from "../../schema/api.ts";
import type { AppEnv } from "../app-env.ts";
import { isProduction } from "../security.ts";
import type { DispatchResult } from "./dispatch.ts";

/**
 * Outside production, states the Durable Object calls and the SQLite rows (from the cursors) an
 * ingest request cost, plus what its objects wrote in the background since their previous call (lake
 * and counter flushes; also stated on its own), so the benchmark and the cost model use measured
 * counts. Production omits them: they describe internals, and nothing there reads them.
 */
export function exposeIngestStats(c: Context<AppEnv>, result: DispatchResult, calls: number): void {
  if (isProduction(c.env)) return;
  c.header(INGEST_STATS_HEADERS.calls, String(calls));
  c.header(INGEST_STATS_HEADERS.rowsWritten, String(result.rowsWritten));
  c.header(INGEST_STATS_HEADERS.rowsRead, String(result.rowsRead));
  c.header(INGEST_STATS_HEADERS.backgroundRowsWritten, String(result.backgroundRowsWritten));
}
