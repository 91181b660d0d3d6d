import { DAY_MS, MINUTE_MS } from "../schema/time.ts";
import { purgeExpiredCredentials } from "./auth/purge.ts";
import { billingJob } from "./billing/schedule.ts";
import { recordEnds, recordStarts, type ScheduledJob } from "./cron-runs.ts";
import { log } from "./errors.ts";
import { expireDeadLetters } from "./ingest/dead-letter-expiry.ts";
import { compactionJob } from "./lake/jobs.ts";

/** A job run by a Cron Trigger; `scheduledTime` is the trigger's nominal time (epoch ms). */
type CronJob = (env: Env, scheduledTime: number) => Promise<void>;

/**
 * Jobs by cron expression (wrangler.toml [triggers]), with how often the cron fires; adding a job is
 * adding a line.
 */
const CRONS: Record<string, { everyMs: number; jobs: Record<string, CronJob> }> = {
  "*/10 * * * *": {
    everyMs: 10 * MINUTE_MS,
    jobs: { "billing.daily": billingJob },
  },
  "30 3 * * *": {
    everyMs: DAY_MS,
    jobs: {
      "lake.compaction": compactionJob,
      "auth.purge": purgeExpiredCredentials,
      "dead_letters.expire": expireDeadLetters,
    },
  },
};

/** The crons that run jobs: wrangler.toml's [triggers] lists exactly these (a cron without jobs only logs `cron_unknown`). */
export const JOB_CRONS: readonly string[] = Object.keys(CRONS);

/** Every job, with its cron and how often that fires: what `jobStatuses` judges a job's latest run by. */
export const SCHEDULED_JOBS: readonly ScheduledJob[] = Object.entries(CRONS).flatMap(([cron, { everyMs, jobs }]) => Object.keys(jobs).map((name) => ({ name, cron, everyMs })));

/**
 * Runs every job of the cron that fired, each independently, recording each one's start and end
 * (workers/cron-runs.ts); the invocation fails (and shows as failed in the dashboard) when any job
 * threw, after all of them ran.
 */
export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  const jobs = CRONS[controller.cron]?.jobs;
  if (!jobs) {
    log("warn", null, "cron_unknown", { cron: controller.cron });
    return;
  }
  const names = Object.keys(jobs);
  await recordStarts(env.DB, names, Date.now());
  const settled = await Promise.allSettled(names.map((name) => jobs[name]!(env, controller.scheduledTime)));
  await recordEnds(env.DB, names, settled, Date.now());
  const failed: string[] = [];
  settled.forEach((s, i) => {
    if (s.status === "rejected") {
      failed.push(names[i]!);
      log("error", null, "cron_job_failed", s.reason);
    }
  });
  if (failed.length > 0) throw new Error(`cron ${controller.cron}: ${failed.join(", ")} failed`);
}
