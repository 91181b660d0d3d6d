import { Hono } from "hono";
import { FlushQuery, type FlushResponse } from "../../../schema/api.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { requireClient } from "../../client-records.ts";
import { ApiError } from "../../errors.ts";
import { flushClients } from "../../lake/jobs.ts";
import { valid } from "../../validate.ts";

/** The lake's outboxes, written out on demand. */
export const adminFlush = new Hono<AppEnv>();

/** Writes pending detail rows to the lake now, for one client or all; 503 when some could not be (retry). */
adminFlush.post("/", valid("query", FlushQuery), async (c) => {
  const { client_id: clientId } = c.req.valid("query");
  const db = c.get("db");
  const only = clientId ? [await requireClient(db, clientId)] : undefined;
  const { files, failed } = await flushClients(c.env, only);
  await audit(db, c.get("user").email, "lake.flush", clientId ?? null, { files: files.length, failed });
  if (failed.length > 0) throw new ApiError(503, "flush_failed", "some outboxes could not be written; retry", { clients: failed, files });
  return c.json({ files } satisfies FlushResponse);
});
