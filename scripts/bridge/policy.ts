/**
 * What a response from `POST /v1/ingest/events` means for the records it carried. The endpoint's
 * contract (DESIGN.md): 2xx = stored (bad records listed in `rejected`), 429/503 = retry the same batch,
 * other 4xx = the caller's fault, never fixed by retrying. Between the bridge and the Worker sit
 * Cloudflare's edge and maybe proxies, whose 5xx are as transient as the Worker's own.
 */
import type { z } from "zod";
import type { IngestReject } from "../../schema/api.ts";

/** A record the endpoint refused, as its answer lists it. */
export type RecordRejection = z.infer<typeof IngestReject>;

export type Verdict =
  | { kind: "delivered"; accepted: number; duplicates: number; rejected: RecordRejection[] }
  /** Transient: send the same records again after `delayMs` (from Retry-After) or the backoff. */
  | { kind: "retry"; status: number; code: string; delayMs: number | null }
  /** 413: the batch is too large; halve it. */
  | { kind: "split"; status: number; code: string; message: string }
  /** Permanent for these records: dead-letter them and move on. */
  | { kind: "dead_letter"; status: number; code: string; message: string }
  /** Wrong key or URL: every record would fail the same way, so stop without committing. */
  | { kind: "fatal"; status: number; code: string; message: string };

/**
 * Statuses a retry can fix: throttling, timeouts, and every server-side failure (Cloudflare's 520–530
 * included) but 501 Not Implemented and 505 HTTP Version Not Supported, which say the same each time.
 */
function isRetryable(status: number): boolean {
  if (status === 408 || status === 425 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}
/**
 * Statuses that say the bridge itself is misconfigured: a bad key, a key scoped to a client none of the
 * request's records belong to (a scoped key's stray records are rejected one by one in a 200), a wrong
 * URL or method.
 */
const FATAL = new Set([401, 403, 404, 405]);

function errorOf(body: unknown): { code: string; message: string } {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return {
    code: typeof e?.code === "string" ? e.code : "http_error",
    message: typeof e?.message === "string" ? e.message : "request failed",
  };
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null || header.trim() === "") return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - now) : null;
}

/** The response headers `classify` reads. */
export interface ResponseHeaders {
  retryAfter?: string | null;
  location?: string | null;
}

/** Classifies one response. `body` is the parsed JSON body (or null). */
export function classify(status: number, body: unknown, headers: ResponseHeaders = {}, now = Date.now()): Verdict {
  if (status >= 200 && status < 300) {
    const b = (body ?? {}) as { accepted?: unknown; duplicates?: unknown; rejected?: unknown };
    // The endpoint always answers these three. A 2xx without them comes from something else (a web
    // server or a proxy's page at a wrong URL): taken for stored, the whole stream would be committed unstored.
    if (typeof b.accepted !== "number" || typeof b.duplicates !== "number" || !Array.isArray(b.rejected)) {
      return { kind: "fatal", status, code: "not_ingest_answer", message: `the URL is wrong: its ${status} is not the ingest endpoint's answer ({accepted, duplicates, rejected})` };
    }
    return { kind: "delivered", accepted: b.accepted, duplicates: b.duplicates, rejected: b.rejected as RecordRejection[] };
  }
  if (status >= 300 && status < 400) {
    // The endpoint never redirects: something in front of it does (http → https, a moved host).
    const to = headers.location ? ` to ${headers.location}` : "";
    return { kind: "fatal", status, code: "redirect", message: `the URL is wrong: it redirects${to}; give --url the address it redirects to` };
  }
  const { code, message } = errorOf(body);
  if (isRetryable(status)) return { kind: "retry", status, code, delayMs: retryAfterMs(headers.retryAfter ?? null, now) };
  if (status === 413) return { kind: "split", status, code, message };
  if (FATAL.has(status) || status < 400 || status >= 500) return { kind: "fatal", status, code, message };
  return { kind: "dead_letter", status, code, message };
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (0-based): the longer of the server's Retry-After (plus up to
 * 20 %) and exponential backoff with jitter (half fixed, half random), capped at `maxMs`. The
 * Retry-After is a floor, not the wait: an object that stays overloaded answers the same one every
 * time, and Cloudflare asks for exponential backoff there, or the retries keep it overloaded. The
 * jitter keeps bridges told the same Retry-After, or failing at the same moment, out of lockstep.
 */
export function backoffDelay(attempt: number, serverDelayMs: number | null, opts: BackoffOptions, random = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 20));
  const backoff = ceiling / 2 + (random() * ceiling) / 2;
  // "Retry-After: 0" (or a date past) counts for nothing, so the backoff still grows under it.
  const server = (serverDelayMs ?? 0) * (1 + random() * 0.2);
  return Math.round(Math.min(Math.max(server, backoff), opts.maxMs));
}
