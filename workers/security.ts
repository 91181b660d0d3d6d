import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "./app-env.ts";
import { DEV_SECRETS, PREVIOUS_SECRET_NAMES } from "../schema/dev-credentials.ts";
import { ApiError } from "./errors.ts";
import { logLine, logOnce } from "./log.ts";

/** Every route but ingest takes small JSON bodies; ingest routes set their own, larger limits. */
export const DEFAULT_MAX_BODY = 64 * 1024;
const INGEST_PATHS = ["/v1/webhooks/", "/v1/ingest/"];

const SECRET_NAMES = Object.keys(DEV_SECRETS) as (keyof typeof DEV_SECRETS)[];
/** Any published dev value, whichever secret it is given to: all are in this repository. */
const DEV_VALUES = new Set<string>(Object.values(DEV_SECRETS));

/**
 * Production unless ENVIRONMENT is exactly "development" (npm start, the tests, the benchmarks set it).
 * A deploy whose ENVIRONMENT is missing or misspelt is one too: a `[env.<name>]` section of
 * wrangler.toml inherits no `[vars]`, and a guard that waited for the exact word "production" would
 * then serve with the published dev secrets, password and ingest key, or with none.
 */
export function isProduction(env: Env): boolean {
  return env.ENVIRONMENT !== "development";
}

/**
 * The secrets unfit for production: a secret missing, short or any dev value; a previous secret set
 * and short or any dev value (it verifies credentials as its secret does; unset, or empty, which
 * verifies nothing, is its normal state); any two secrets of one value, both named: a previous
 * one equal to its secret rotated nothing, and a key shared by two purposes lets a leak of the one
 * (a download-link key) sign for the other (sessions); and an app secret that is not Meta's as given.
 * None means the configuration is fit for production.
 */
function insecureSecrets(env: Env): string[] {
  const set = [...SECRET_NAMES, ...PREVIOUS_SECRET_NAMES.filter((name) => env[name])].map((name) => ({ name, value: env[name] as string | undefined }));
  return set
    .filter(
      ({ name, value }) =>
        !value ||
        DEV_VALUES.has(value) ||
        value.length < 16 ||
        set.some((other) => other.name !== name && other.value === value) ||
        isMangledAppSecret(name, value),
    )
    .map(({ name }) => name);
}

/**
 * Meta's app secret holds no whitespace: one set with a pasted space or line break (`wrangler secret
 * put` trims only the end, `secret bulk` keeps what its JSON holds) matches no delivery's signature,
 * and every webhook would be answered 401, which names no setting.
 */
function isMangledAppSecret(name: string, value: string): boolean {
  return name === "WHATSAPP_APP_SECRET" && /\s/.test(value);
}

/** A request slower than this is always logged, like an error. */
const SLOW_REQUEST_MS = 1_000;

/**
 * ACCESS_LOG_SAMPLE_RATE as a share in [0, 1]; anything else logs every request, and says so once per
 * isolate: a line for each webhook instead of one in a hundred multiplies what Workers Logs bills,
 * and nothing else would name the setting.
 */
export function accessLogSampleRate(env: Env): number {
  const rate = Number(env.ACCESS_LOG_SAMPLE_RATE);
  if (env.ACCESS_LOG_SAMPLE_RATE !== "" && rate >= 0 && rate <= 1) return rate;
  logOnce("error", "access_log_sample_rate_invalid", env.ACCESS_LOG_SAMPLE_RATE, { expected: "a number from 0 to 1", using: 1 });
  return 1;
}

/**
 * Request id (from Cloudflare's ray or new) on the context and the response, and a JSON access-log
 * line for every failed or slow request and a sample (ACCESS_LOG_SAMPLE_RATE) of the others. A line
 * per ingest request costs more than the request's own work where logs are shipped per line (Workers
 * Logs bills them; locally wrangler parses each one, measured at about a third of the webhook path's
 * CPU), and the successful ones say nothing a sample does not.
 */
export const requestLog = createMiddleware<AppEnv>(async (c, next) => {
  const requestId = c.req.header("cf-ray") ?? crypto.randomUUID();
  c.set("requestId", requestId);
  const started = Date.now();
  await next();
  // Straight onto the response, as secureHeaders (inside this) does: c.header() would copy the
  // finalized response first, a whole Response per request.
  c.res.headers.set("x-request-id", requestId);
  const ms = Date.now() - started;
  if (c.res.status < 400 && ms < SLOW_REQUEST_MS && Math.random() >= accessLogSampleRate(c.env)) return;
  // Path only: query strings carry tickets and signatures, bodies carry recipients.
  logLine("info", "request", { request_id: requestId, method: c.req.method, path: c.req.path, status: c.res.status, ms });
});

/**
 * The bindings of wrangler.toml the routes use. A deploy can lose one (a `[env.<name>]` section
 * inherits none of them, a binding renamed in the file): its routes would fail one by one, with a
 * TypeError that names no binding, as a 500 or as a store that "did not answer", and /health could
 * still answer 200.
 */
const BINDINGS = ["DB", "LAKE", "CLIENT_COUNTER", "OVERVIEW"] as const;

/** Answer nothing but 503 while a binding is missing, logging which: a deploy with them all serves the same requests. */
export const bindingsGuard = createMiddleware<AppEnv>(async (c, next) => {
  const missing = BINDINGS.filter((name) => !c.env[name]);
  if (missing.length > 0) {
    throw new ApiError(503, "missing_bindings", "the service is missing bindings; see the deploy section of the README", undefined, { bindings: missing });
  }
  await next();
});

/** In production, answer nothing but 503 until every secret is set to a non-dev value. */
export const productionGuard = createMiddleware<AppEnv>(async (c, next) => {
  if (isProduction(c.env)) {
    const bad = insecureSecrets(c.env);
    if (bad.length > 0) {
      // The names go to the log line, not to the caller: which secret is a dev value is no one else's business.
      throw new ApiError(503, "insecure_configuration", "the service is not configured for production; see the deploy section of the README", undefined, { secrets: bad });
    }
  }
  await next();
});

export const apiSecureHeaders = secureHeaders({
  contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
  crossOriginResourcePolicy: "same-origin",
  referrerPolicy: "no-referrer",
});

/**
 * API answers are per caller and of the moment (a sign-in's token, a viewer's counters, a billing
 * download's signed link): no shared or browser cache may keep them. Routes that choose otherwise
 * set their own header.
 */
export const noStore = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  // A WebSocket's 101 is not cacheable (and cannot be copied).
  if (c.res.status === 101 || c.res.headers.has("cache-control")) return;
  try {
    c.res.headers.set("cache-control", "no-store");
  } catch {
    // A Durable Object's answer (a live socket's refusal) has immutable headers: set them on a copy.
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set("cache-control", "no-store");
  }
});

const limitBody = bodyLimit({
  maxSize: DEFAULT_MAX_BODY,
  onError: () => {
    throw new ApiError(413, "payload_too_large", `request bodies are limited to ${DEFAULT_MAX_BODY} bytes`);
  },
});

/** 64 KiB for every non-ingest request body. */
export const defaultBodyLimit = createMiddleware<AppEnv>(async (c, next) => {
  if (INGEST_PATHS.some((p) => c.req.path.startsWith(p))) return next();
  return limitBody(c, next);
});
