import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../app-env.ts";
import { bearerToken, ingestKeyFrom } from "../auth/api-keys.ts";
import { DEV_INGEST_KEY } from "../../schema/dev-credentials.ts";
import { ApiError } from "../errors.ts";
import { isProduction } from "../security.ts";
import { MalformedBatch, TooManyRecords, batchText, otherClientsOnly, recordText, refuseNestedBatches, splitRecords, validateRecords, withinKeyScope, type RejectedRecord } from "../ingest/bridge.ts";
import { storageFullRejection } from "../ingest/dispatch.ts";
import { keepDeadLetter, rejectedRecordsLetter } from "../ingest/dead-letters.ts";
import { storeEvents } from "../ingest/store-events.ts";
import { routeRecords } from "../ingest/routing.ts";
import { INGEST_MAX_BYTES, INGEST_MAX_RECORDS, type BridgeResult } from "../../schema/api.ts";

export const ingest = new Hono<AppEnv>();

/** Seconds a sender should wait after a 429/503: Durable Object and R2 hiccups clear within seconds. */
const INGEST_RETRY_AFTER_SECONDS = 2;

// Retry-After on exactly the answers that ask for a retry, so senders that honour it (the bridge,
// proxies) back off; Kafka Connect and Redpanda Connect decide by status alone (docs/kafka.md).
// The route's own refusals wait longer than onError's default; a busy store's 503
// (storage_unavailable, not an ApiError) keeps that default.
ingest.use("/events", async (c, next) => {
  await next();
  if ((c.res.status === 429 || c.res.status === 503) && (c.error instanceof ApiError || !c.res.headers.has("retry-after"))) {
    c.res.headers.set("retry-after", String(INGEST_RETRY_AFTER_SECONDS));
  }
});

/**
 * Kafka-bridged events. Per-record validation: bad records are listed in `rejected` (and kept in the
 * DLQ) while the rest are stored. 4xx means "do not retry"; 429/503 mean "retry the same batch".
 */
ingest.post(
  "/events",
  async (c, next) => {
    const authorization = c.req.header("authorization");
    // The seed's documented key would be everyone's key if a production database were ever seeded.
    if (isProduction(c.env) && bearerToken(authorization) === DEV_INGEST_KEY) {
      throw new ApiError(401, "invalid_api_key", "the development ingest key is not accepted in production");
    }
    const key = await ingestKeyFrom(c.get("db"), authorization);
    if (!key) throw new ApiError(401, "invalid_api_key", "Authorization: Bearer <ingest API key> is missing or not valid");
    c.set("ingestKey", key);
    await next();
  },
  bodyLimit({
    maxSize: INGEST_MAX_BYTES,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `batches are limited to ${INGEST_MAX_BYTES} bytes; send smaller batches`);
    },
  }),
  async (c) => {
    const keyClient = c.get("ingestKey").clientId;
    // Untyped and text/plain bodies (what `fetch` sends for a string) are read as JSON.
    const contentType = c.req.header("content-type") ?? "application/json";
    if (!/json|^text\/plain\s*(;|$)/i.test(contentType)) {
      throw new ApiError(415, "unsupported_media_type", "send application/json or application/x-ndjson");
    }
    // A compressed body read as JSON would be a 400, which a sink takes for bad data to drop or dead-letter.
    const encoding = c.req.header("content-encoding");
    if (encoding !== undefined && !/^\s*identity\s*$/i.test(encoding)) {
      throw new ApiError(415, "unsupported_content_encoding", `Content-Encoding ${encoding} is not read; send the body uncompressed`);
    }
    // Decoded by hand: `.text()` warns on NDJSON content types although both are UTF-8.
    const bytes = await c.req.arrayBuffer();
    const receivedAt = Date.now();

    let body: string | undefined;
    let records;
    try {
      body = batchText(bytes);
      records = splitRecords(body, contentType);
      refuseNestedBatches(records);
    } catch (e) {
      if (e instanceof TooManyRecords) {
        throw new ApiError(413, "too_many_records", `at most ${INGEST_MAX_RECORDS} records per request; split the batch`);
      }
      if (e instanceof MalformedBatch) {
        await keepDeadLetter(c.env.LAKE, {
          source: "kafka",
          rejections: [{ at: "", code: "malformed", message: e.message }],
          input: body ?? new TextDecoder().decode(bytes),
          contentType,
          clientScope: keyClient,
        });
        throw new ApiError(400, "malformed_batch", e.message);
      }
      throw e;
    }

    // A batch naming only other clients is a key meant for another client: refused whole, stored nowhere.
    const otherClient = keyClient === null ? null : otherClientsOnly(records, keyClient);
    if (otherClient !== null) throw new ApiError(403, "client_not_allowed", `this API key may only ingest for client ${keyClient}`, otherClient);
    const { valid, rejected } = validateRecords(records, receivedAt);
    const { allowed, foreign } = withinKeyScope(valid, keyClient);
    const { routed, unknown } = await routeRecords(c.get("db"), allowed);
    const rejectedAll = [...rejected, ...foreign, ...unknown].sort((a, b) => a.at - b.at);
    if (rejectedAll.length > 0) await keepDeadLetter(c.env.LAKE, rejectedRecordsLetter(rejectedAll, contentType, keyClient));
    const result = await storeEvents(c, routed);
    // A full client's records: refused and dead-lettered like any other, after the rest were stored.
    let full: RejectedRecord[] = [];
    if (result.full.length > 0) {
      const recordAt = new Map(allowed.map((v) => [v.index, v]));
      full = result.full.map(({ event, at }) => ({ at: at as number, ...storageFullRejection(event.client_id), input: recordText(recordAt.get(at as number)!) }));
      await keepDeadLetter(c.env.LAKE, rejectedRecordsLetter(full, contentType, keyClient));
    }
    return c.json({
      accepted: result.accepted,
      duplicates: result.duplicates,
      rejected: [...rejectedAll, ...full].sort((a, b) => a.at - b.at).map(({ at, code, message }) => ({ index: at, code, message })),
    } satisfies BridgeResult);
  },
);
