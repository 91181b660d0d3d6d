import { cors } from "hono/cors";
import type { Context } from "hono";
import { readOrigins } from "./dashboard-origins.ts";
import { logOnce } from "./log.ts";

/**
 * Origins besides the Worker's own that may call the API: the dashboard on Pages (DASHBOARD_ORIGIN).
 * An entry that is not a URL lets nothing in, and the dashboard it meant fails every call with a CORS
 * error that names no setting: said once per isolate (`npm run deploy` refuses such an entry, a value
 * set in Cloudflare's dashboard is not checked before).
 */
export function dashboardOrigins(env: Env): string[] {
  const { origins, unreadable } = readOrigins(env.DASHBOARD_ORIGIN);
  if (unreadable.length > 0) logOnce("error", "dashboard_origin_invalid", env.DASHBOARD_ORIGIN, { unreadable, expected: "URLs such as https://zapmeter-dashboard.pages.dev, comma-separated" });
  return origins;
}

/**
 * CORS for a dashboard served from another origin (Cloudflare Pages). It authenticates with the
 * bearer token from login, never with the cookie (SameSite=Strict), so credentials stay off.
 */
export const dashboardCors = cors({
  origin: (origin: string, c: Context) => (dashboardOrigins(c.env as Env).includes(origin) ? origin : null),
  allowHeaders: ["authorization", "content-type"],
  allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
  // Without these a page of the dashboard's origin could not read when to retry, nor a report's file name.
  exposeHeaders: ["retry-after", "content-disposition"],
  maxAge: 600,
});
