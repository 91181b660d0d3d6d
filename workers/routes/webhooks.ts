import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { WEBHOOK_MAX_BYTES, WebhookVerifyQuery } from "../../schema/whatsapp.ts";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../errors.ts";
import type { Rejection, WebhookResult } from "../../schema/api.ts";
import { keepDeadLetter } from "../ingest/dead-letters.ts";
import { storeEvents } from "../ingest/store-events.ts";
import { storageFullRejection } from "../ingest/dispatch.ts";
import { routeStatuses } from "../ingest/routing.ts";
import { verifyMetaSignature } from "../ingest/signature.ts";
import { logUnlistedPricing } from "../ingest/unlisted-pricing.ts";
import { MalformedWebhook, parseWebhookText } from "../ingest/whatsapp.ts";
import { constantTimeEqualText } from "../auth/crypto.ts";

export const webhooks = new Hono<AppEnv>();

/** Subscription handshake: echo the challenge when the verify token matches. */
webhooks.get("/whatsapp", async (c) => {
  const q = WebhookVerifyQuery.safeParse(c.req.query());
  if (!q.success || !(await constantTimeEqualText(q.data["hub.verify_token"], c.env.WHATSAPP_VERIFY_TOKEN))) {
    throw new ApiError(403, "verification_failed", "hub.mode must be subscribe, hub.verify_token must match and hub.challenge must be present");
  }
  return c.text(q.data["hub.challenge"]);
});

/**
 * Signed status notifications. 200 only after every event is durable in its Durable Object; Meta
 * retries anything else for 7 days, and dedup makes those retries safe.
 */
webhooks.post(
  "/whatsapp",
  bodyLimit({
    maxSize: WEBHOOK_MAX_BYTES,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `webhook bodies are limited to ${WEBHOOK_MAX_BYTES} bytes`);
    },
  }),
  async (c) => {
    const raw = await c.req.arrayBuffer();
    if (!(await verifyMetaSignature(raw, c.req.header("x-hub-signature-256"), c.env.WHATSAPP_APP_SECRET))) {
      throw new ApiError(401, "invalid_signature", "X-Hub-Signature-256 is missing or does not match the body");
    }
    const text = new TextDecoder().decode(raw);
    const receivedAt = Date.now();
    const deadLetter = (rejections: Rejection[]) =>
      keepDeadLetter(c.env.LAKE, { source: "whatsapp", rejections, input: text, contentType: c.req.header("content-type") });

    let parsed;
    try {
      parsed = parseWebhookText(text, receivedAt);
    } catch (e) {
      if (!(e instanceof MalformedWebhook)) throw e;
      await deadLetter(e.rejections);
      throw new ApiError(400, "malformed_webhook", "webhook payload is not a valid WhatsApp notification", e.issues);
    }

    logUnlistedPricing(c, parsed.unlisted);
    const { routed, unknown } = await routeStatuses(c.get("db"), parsed.statuses);
    const rejections: Rejection[] = [...parsed.rejected, ...unknown];
    // The DLQ write comes first: if it fails we answer 503 before anything is counted.
    if (rejections.length > 0) await deadLetter(rejections);
    const result = await storeEvents(c, routed);
    // A full client's statuses: the body kept again, naming them too, after the rest were stored.
    // Its replay stores them once the client has more shards (and finds the rest duplicates).
    if (result.full.length > 0) await deadLetter([...rejections, ...result.full.map((r) => ({ at: String(r.at), ...storageFullRejection(r.event.client_id) }))]);
    return c.json({
      accepted: result.accepted,
      duplicates: result.duplicates,
      ignored: parsed.ignored + unknown.length + result.full.length,
    } satisfies WebhookResult);
  },
);
