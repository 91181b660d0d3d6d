import { Hono } from "hono";
import { ErasureId, ErasureRequest } from "../../../schema/api.ts";
import type { AppEnv } from "../../app-env.ts";
import { audit } from "../../audit.ts";
import { eraseRecipient, erasureOf } from "../../client-counters.ts";
import { requireClient } from "../../client-records.ts";
import { ApiError } from "../../errors.ts";
import { valid } from "../../validate.ts";

/**
 * A recipient's erasure from one client's lake (docs/privacy.md), mounted at
 * /v1/admin/clients/:id/erasures: a data-protection request is a client's, about one of the people
 * it sent to, so it sits under the client as its objects do.
 */
export const adminErasures = new Hono<AppEnv>();

/**
 * Asks the client's shard 0 to erase the recipient; 202 with the erasure's state, the pending one's
 * when the same recipient's erasure is still going on. Neither the answer, the audit entry nor a log
 * line holds the recipient.
 */
adminErasures.post("/", valid("json", ErasureRequest), async (c) => {
  const db = c.get("db");
  const client = await requireClient(db, c.req.param("id")!);
  const erasure = await eraseRecipient(c.env, client, c.req.valid("json").recipient).catch((err: unknown) => {
    throw new ApiError(503, "erasure_not_asked", "the client's object could not be asked; retry", undefined, err);
  });
  await audit(db, c.get("user").email, "recipient.erase", client.id, { erasure_id: erasure.id });
  return c.json(erasure, 202);
});

/** The state of one erasure of the client; 404 when it has none by that id. */
adminErasures.get("/:erasure_id", async (c) => {
  const client = await requireClient(c.get("db"), c.req.param("id")!);
  const id = ErasureId.safeParse(c.req.param("erasure_id"));
  const erasure = id.success ? await erasureOf(c.env, client.id, id.data) : null;
  if (!erasure) throw new ApiError(404, "erasure_not_found", `client ${client.id} has no erasure ${c.req.param("erasure_id")}`);
  return c.json(erasure);
});
