import { cors } from "hono/cors";
import type { Context } from "hono";
import { readOrigins } from "./dashboard-origins.ts";

/** Origins besides the Worker's own that may call the API: the dashboard on Pages (DASHBOARD_ORIGIN). */
export function dashboardOrigins(env: Env): string[] {
  return readOrigins(env.DASHBOARD_ORIGIN).origins;
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
