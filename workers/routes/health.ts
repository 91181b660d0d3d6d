import { Hono } from "hono";
import journal from "../../migrations/meta/_journal.json";
import type { HealthResponse } from "../../schema/api.ts";
import type { AppEnv } from "../app-env.ts";
import { jobStatuses } from "../cron-runs.ts";
import { ApiError } from "../errors.ts";
import { SCHEDULED_JOBS } from "../scheduled.ts";

export const health = new Hono<AppEnv>();

/**
 * The newest migration this code's queries need, under the name `wrangler d1 migrations apply`
 * records in `d1_migrations` (drizzle-kit writes the journal with each migration). A deploy by
 * `wrangler deploy` alone skips the migrations: D1 answers, and every query of a table or a column
 * they add fails.
 */
export const NEEDED_MIGRATION = `${journal.entries.at(-1)!.tag}.sql`;

/** Whether D1 has NEEDED_MIGRATION applied; throws when D1 does not answer. */
async function migrated(db: D1Database): Promise<boolean> {
  try {
    return (await db.prepare("select 1 from d1_migrations where name = ?").bind(NEEDED_MIGRATION).first()) !== null;
  } catch (err) {
    // No migration was ever applied: wrangler creates the table with the first.
    if (err instanceof Error && /no such table: d1_migrations/.test(err.message)) return false;
    throw err;
  }
}

/**
 * 200 when D1 (migrated) and R2 answer, with each Cron Trigger job's state; 503 (retryable)
 * otherwise. A job that stopped or fails is told, not made a 503: the Worker still serves, and a
 * load balancer would take it out of service for nothing.
 */
health.get("/", async (c) => {
  const [schema, lake] = await Promise.allSettled([migrated(c.env.DB), c.env.LAKE.head("health-probe")]);
  const [d1, r2] = [schema, lake].map((r) => r.status === "fulfilled");
  if (!d1 || !r2) throw new ApiError(503, "unhealthy", "a storage dependency is not answering", { d1, r2 });
  if (schema.status === "fulfilled" && !schema.value) {
    // The name goes to the log line, as the production guard's secrets do.
    throw new ApiError(503, "migrations_not_applied", "the database lacks migrations; see the deploy section of the README", undefined, { migration: NEEDED_MIGRATION });
  }
  // Read only once the table is known to be there: a database without the migration answered above.
  const statuses = await jobStatuses(c.env.DB, SCHEDULED_JOBS, Date.now()).catch((err: unknown) => {
    throw new ApiError(503, "unhealthy", "a storage dependency is not answering", { d1: false, r2 }, err);
  });
  const jobs = Object.fromEntries(statuses.map((j) => [j.job, j.state]));
  return c.json({ ok: true, d1, r2, jobs } satisfies HealthResponse);
});
