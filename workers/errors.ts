import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { errorBody } from "../schema/api.ts";
import { fieldIssues } from "../schema/issues.ts";
import { DAY_MS } from "../schema/time.ts";
import type { AppEnv } from "./app-env.ts";
import { logLine, type LogLevel } from "./log.ts";

/** An error the caller should see as `{error: {code, message, details?}}` with `status`. */
export class ApiError extends HTTPException {
  readonly code: string;
  readonly details: unknown;

  constructor(status: ContentfulStatusCode, code: string, message: string, details?: unknown, cause?: unknown) {
    super(status, { message, cause });
    this.code = code;
    this.details = details;
  }
}

/**
 * How much longer than its days a range of local days can be: a clock that goes back within it gives
 * the time back (1 h mostly, 2 h at Antarctica/Troll). October in Berlin, midnight to midnight, is
 * 31 days and an hour, and was refused as over 31 days until 2026-12-07.
 */
const LONGEST_CLOCK_BACK_MS = 2 * 3_600_000;

/**
 * Refuses a range longer than `maxMs` (whole days) as 400 `range_too_large`, naming the limit in
 * `details.max_days` so that a caller (the dashboard, a script) can split the range by it. That many
 * local days are within it in any zone (`LONGEST_CLOCK_BACK_MS`).
 */
export function refuseRangeOver(maxMs: number, spanMs: number, what: string): void {
  if (spanMs > maxMs + LONGEST_CLOCK_BACK_MS) throw new ApiError(400, "range_too_large", `${what} at most ${maxMs / DAY_MS} days`, { max_days: maxMs / DAY_MS });
}

const CODE_BY_STATUS: Record<number, string> = {
  400: "bad_request",
  401: "unauthenticated",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  503: "unavailable",
};

/**
 * A call to D1 or R2 the request cannot go on without (who is calling, which client a number or a
 * record belongs to, the dead letters being replayed). Its failure is the store not answering, never
 * the caller's input, and the same request can succeed in a moment: 503, where falling through to
 * onError would answer 500.
 */
export async function storeCall<T>(call: Promise<T>, code = "store_unavailable", message = "a store did not answer; retry"): Promise<T> {
  try {
    return await call;
  } catch (cause) {
    throw new ApiError(503, code, message, undefined, cause);
  }
}

/**
 * D1's, Durable Object storage's and R2's failures that a retry can outlive: a locked or busy
 * database, a dropped connection, an overloaded or restarting store, R2's internal error (10001),
 * its service unavailable (10043) and its concurrent writes of one object (10058). Durable Objects
 * also say so by the error's `.retryable` or `.overloaded` (best-practices/error-handling), and name
 * account-wide limits and a shut-down instance in their own words (observability/troubleshooting):
 * "…Please back off and try again later.", "…no longer active. Reconnect or retry the request.".
 * An overloaded object must not be retried at once, which the 503's Retry-After and the senders'
 * backoff see to. Looked for along the `cause` chain, as drizzle wraps the driver's error. SQL errors
 * of our own (a constraint, a syntax error, a full database) and R2's refusals of the request
 * itself are not.
 */
const TRANSIENT_STORAGE =
  /SQLITE_BUSY|SQLITE_LOCKED|database is locked|Network connection lost|overloaded|D1_RESET|reset because|object to be reset|was reset|transient issue|timed out|back off and try again|no longer active|\((?:10001|10043|10058)\)/i;

function isTransientStorageError(err: unknown): boolean {
  return causes(err).some((e) => isFlaggedRetryable(e) || TRANSIENT_STORAGE.test(e.message));
}

/** The runtime's own flags on a Durable Object's error (booleans it sets; anything else is not its flag). */
function isFlaggedRetryable(e: Error): boolean {
  const flags = e as { retryable?: unknown; overloaded?: unknown };
  return flags.retryable === true || flags.overloaded === true;
}

/**
 * A Durable Object's database at its size limit ("database or disk is full: SQLITE_FULL"): no retry
 * of the same request outlives it, only more room (more shards for its client). A failure the
 * runtime flags or words as transient is never this, whatever else it says.
 */
export function isStorageFull(err: unknown): boolean {
  return !isTransientStorageError(err) && causes(err).some((e) => /SQLITE_FULL|database or disk is full/.test(e.message));
}

/**
 * D1 refused a write by a unique key the route had checked: another request wrote the same record
 * in between. The caller's retry meets the route's own check and its precise error.
 */
function isKeyConflict(err: unknown): boolean {
  return causes(err).some((e) => /UNIQUE constraint failed|SQLITE_CONSTRAINT_PRIMARYKEY/.test(e.message));
}

/** `err` and its causes (drivers wrap D1's error), outermost first, a few levels deep at most. */
function causes(err: unknown): Error[] {
  const out: Error[] = [];
  for (let e: unknown = err; e instanceof Error && out.length < 5; e = e.cause) out.push(e);
  return out;
}

/**
 * Seconds a 503 asks the caller to wait. Every 503 is an answer a retry can outlive (a store that
 * answers again, a deploy with its secrets set), so every one says when, here where they are all
 * made; a route may ask for longer (ingest's senders: routes/ingest.ts).
 */
const RETRY_AFTER_S = 1;

/** The single place where thrown errors become responses. Unknown errors are logged, never echoed. */
export function onError(err: Error, c: Context<AppEnv>): Response {
  if (err instanceof ApiError) {
    if (err.status >= 500) logFailure(c, err);
    if (err.status === 503) c.header("retry-after", String(RETRY_AFTER_S));
    return c.json(errorBody(err.code, err.message, err.details), err.status);
  }
  if (err instanceof z.ZodError) {
    return c.json(errorBody("validation_failed", "request is invalid", fieldIssues(err)), 400);
  }
  // A server-side HTTPException (hono's own) is a fault like any other: logged, not echoed.
  if (err instanceof HTTPException && err.status < 500) {
    const status = err.status as ContentfulStatusCode;
    return c.json(errorBody(CODE_BY_STATUS[status] ?? "error", err.message || "request failed"), status);
  }
  if (isTransientStorageError(err)) {
    log("error", c, "storage_unavailable", err);
    c.header("retry-after", String(RETRY_AFTER_S));
    return c.json(errorBody("storage_unavailable", "a store did not answer; retry"), 503);
  }
  if (isKeyConflict(err)) {
    log("warn", c, "concurrent_change", err);
    return c.json(errorBody("concurrent_change", "another request changed the same record at the same time; read it again and retry"), 409);
  }
  log("error", c, "unhandled", err);
  return c.json(errorBody("internal", "internal error"), 500);
}

/** No route answered: 405 with `Allow` when the path is served under other methods (`allowed`), else 404. */
export function notFound(c: Context, allowed: string[]): Response {
  const route = `${c.req.method} ${new URL(c.req.url).pathname}`;
  if (allowed.length === 0) return c.json(errorBody("not_found", `no route for ${route}`), 404);
  c.header("allow", allowed.join(", "));
  return c.json(errorBody("method_not_allowed", `no route for ${route}; this path takes ${allowed.join(", ")}`), 405);
}

/** A request's own log fields: its id and path, never its query string or body. */
function requestFields(c: Context<AppEnv> | null): Record<string, unknown> {
  return c ? { request_id: c.get("requestId"), path: new URL(c.req.url).pathname } : {};
}

function isFields(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * A log line, of a request when `c` is given: `detail`'s fields beside `level` and `event` (the
 * fields docs/operations.md documents and alerts match on), or what was thrown as its `error`;
 * logLine has the rules.
 */
export function log(level: LogLevel, c: Context<AppEnv> | null, event: string, detail?: unknown): void {
  if (isFields(detail)) logLine(level, event, { ...requestFields(c), ...detail });
  else logLine(level, event, requestFields(c), detail);
}

/**
 * The line of a 5xx answer: its code as the event, the `details` it told the caller, and its cause:
 * an error, or fields kept from the caller (which secrets are dev values, say).
 */
function logFailure(c: Context<AppEnv>, err: ApiError): void {
  const told = err.details === undefined ? {} : { details: err.details };
  if (isFields(err.cause)) log("error", c, err.code, { ...told, ...err.cause });
  else logLine("error", err.code, { ...requestFields(c), ...told }, err.cause ?? err);
}
