import { utcDate } from "../../schema/time.ts";
import { ApiError } from "../errors.ts";

/** Why some input was not counted. */
export interface Rejection {
  /** Position of the record in the request (bridge) or the JSON path (webhook). */
  at: number | string;
  code: string;
  message: string;
}

export interface DeadLetter {
  source: "whatsapp" | "kafka";
  rejections: Rejection[];
  /** The input exactly as received (or the rejected records), so it can be replayed. */
  input: string;
  contentType?: string;
  truncated?: boolean;
}

/**
 * Keeps rejected input verbatim in R2 `dlq/date=<UTC day>/<uuid>.json` with the reasons. Fails with a
 * 503 when R2 does, so the sender retries rather than losing the input.
 */
export async function keepDeadLetter(bucket: R2Bucket, letter: DeadLetter, now = Date.now()): Promise<string> {
  const key = `dlq/date=${utcDate(now)}/${crypto.randomUUID()}.json`;
  const body = JSON.stringify({
    received_at: now,
    source: letter.source,
    rejections: letter.rejections,
    content_type: letter.contentType ?? null,
    truncated: letter.truncated ?? false,
    input: letter.input,
  });
  try {
    await bucket.put(key, body, { httpMetadata: { contentType: "application/json" } });
  } catch (cause) {
    throw new ApiError(503, "dead_letter_unavailable", "could not keep rejected input; retry the request", undefined, cause);
  }
  return key;
}
