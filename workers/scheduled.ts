import { purgeExpiredCredentials } from "./auth/purge.ts";
import { billingJob } from "./billing/schedule.ts";
import { log } from "./errors.ts";
import { expireDeadLetters } from "./ingest/dead-letter-expiry.ts";
import { compactionJob } from "./lake/jobs.ts";

/** A job run by a Cron Trigger; `scheduledTime` is the trigger's nominal time (epoch ms). */
type CronJob = (env: Env, scheduledTime: number) => Promise<void>;

/** Jobs by cron expression (wrangler.toml [triggers]); adding a job is adding a line. */
const JOBS: Record<string, Record<string, CronJob>> = {
  "*/10 * * * *": {
    "billing.daily": billingJob,
  },
  "30 3 * * *": {
    "lake.compaction": compactionJob,
    "auth.purge": purgeExpiredCredentials,
    "dead_letters.expire": expireDeadLetters,
  },
};

/** The crons that run jobs: wrangler.toml's [triggers] lists exactly these (a cron without jobs only logs `cron_unknown`). */
export const JOB_CRONS: readonly string[] = Object.keys(JOBS);

/**
 * Runs every job of the cron that fired, each independently; the invocation fails (and shows as
 * failed in the dashboard) when any job threw, after all of them ran.
 */
export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  const jobs = JOBS[controller.cron];
  if (!jobs) {
    log("warn", null, "cron_unknown", { cron: controller.cron });
    return;
  }
  const names = Object.keys(jobs);
  const settled = await Promise.allSettled(names.map((name) => jobs[name]!(env, controller.scheduledTime)));
  const failed: string[] = [];
  settled.forEach((s, i) => {
    if (s.status === "rejected") {
      failed.push(names[i]!);
      log("error", null, "cron_job_failed", s.reason);
    }
  });
  if (failed.length > 0) throw new Error(`cron ${controller.cron}: ${failed.join(", ")} failed`);
}
