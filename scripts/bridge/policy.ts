/**
 * What a response from `POST /v1/ingest/events` means for the records it carried. The endpoint's
 * contract (DESIGN.md): 2xx = stored (bad records listed in `rejected`), 429/503 = retry the same batch,
 * other 4xx = the caller's fault, never fixed by retrying.
 */

export interface RecordRejection {
  index: number;
  code: string;
  message: string;
}

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

/** Statuses a retry can fix: throttling, timeouts, and server-side failures other than "not implemented". */
const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);
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

/** Classifies one response. `body` is the parsed JSON body (or null). */
export function classify(status: number, body: unknown, retryAfter: string | null, now = Date.now()): Verdict {
  if (status >= 200 && status < 300) {
    const b = (body ?? {}) as { accepted?: unknown; duplicates?: unknown; rejected?: unknown };
    return {
      kind: "delivered",
      accepted: typeof b.accepted === "number" ? b.accepted : 0,
      duplicates: typeof b.duplicates === "number" ? b.duplicates : 0,
      rejected: Array.isArray(b.rejected) ? (b.rejected as RecordRejection[]) : [],
    };
  }
  const { code, message } = errorOf(body);
  if (RETRYABLE.has(status)) return { kind: "retry", status, code, delayMs: retryAfterMs(retryAfter, now) };
  if (status === 413) return { kind: "split", status, code, message };
  if (FATAL.has(status) || status < 400 || status >= 500) return { kind: "fatal", status, code, message };
  return { kind: "dead_letter", status, code, message };
}

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
}

/**
 * Delay before retry number `attempt` (0-based): the server's Retry-After when it gave one, else
 * exponential backoff with jitter (half fixed, half random), so many bridges do not retry in lockstep.
 */
export function backoffDelay(attempt: number, serverDelayMs: number | null, opts: BackoffOptions, random = Math.random): number {
  if (serverDelayMs !== null) return Math.min(serverDelayMs, opts.maxMs);
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
