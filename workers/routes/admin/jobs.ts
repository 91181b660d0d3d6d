import { Hono } from "hono";
import type { CronJobList } from "../../../schema/api.ts";
import type { AppEnv } from "../../app-env.ts";
import { jobStatuses } from "../../cron-runs.ts";
import { SCHEDULED_JOBS } from "../../scheduled.ts";

/** The Cron Trigger jobs: each one's latest run, and whether the trigger still fires. */
export const adminJobs = new Hono<AppEnv>();

adminJobs.get("/", async (c) => {
  const body: CronJobList = { jobs: await jobStatuses(c.env.DB, SCHEDULED_JOBS, Date.now()) };
  return c.json(body);
});
