import { sql } from "drizzle-orm";
import { Hono } from "hono";
import type { HealthResponse } from "../../schema/api.ts";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../errors.ts";

export const health = new Hono<AppEnv>();

/** 200 when D1 and R2 answer; 503 (retryable) otherwise. */
health.get("/", async (c) => {
  const checks = await Promise.allSettled([c.get("db").run(sql`select 1`), c.env.LAKE.head("health-probe")]);
  const [d1, r2] = checks.map((r) => r.status === "fulfilled");
  if (!d1 || !r2) throw new ApiError(503, "unhealthy", "a storage dependency is not answering", { d1, r2 });
  return c.json({ ok: true, d1, r2 } satisfies HealthResponse);
});
