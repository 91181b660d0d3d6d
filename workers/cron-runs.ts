import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { CronJobState, CronJobStatus } from "../schema/api.ts";
import { cronJobRuns } from "../schema/db.ts";
import { MINUTE_MS } from "../schema/time.ts";
import { errorMessage, logLine } from "./log.ts";

/** A Cron Trigger job as wrangler.toml schedules it: its name, its cron, and how often that cron fires. */
export interface ScheduledJob {
  name: string;
  cron: string;
  everyMs: number;
}

/**
 * How late a start may come before the job counts as `overdue`: Cloudflare fires a cron around its
 * minute, not to the second, and a deploy can skip one firing; a stopped trigger is late by far more.
 */
const LATE_AFTER_MS = 15 * MINUTE_MS;
/**
 * Cloudflare ends a cron invocation after at most 15 minutes of wall time, without running anything
 * after: a run that started longer ago than that and never finished was cut off (`unfinished`).
 */
const CUT_OFF_AFTER_MS = 15 * MINUTE_MS;
/** The stored message of a failure: enough to name it; the log line has the whole error. */
const ERROR_TEXT_MAX = 500;

/**
 * Records that `jobs` start now. A failure to record is logged, not thrown: the jobs (billing first)
 * matter more than their record, and a record that stays old shows as `overdue`, which is looked at.
 */
export async function recordStarts(db: D1Database, jobs: string[], now: number): Promise<void> {
  await recording(jobs, () => {
    const d = drizzle(db);
    const [first, ...more] = jobs.map((job) =>
      d
        .insert(cronJobRuns)
        .values({ job, startedAt: now })
        .onConflictDoUpdate({ target: cronJobRuns.job, set: { startedAt: now, finishedAt: null } }),
    );
    return d.batch([first!, ...more]);
  });
}

/** Records how each of `jobs` ended, `settled` in the same order. Logged, not thrown, as `recordStarts`. */
export async function recordEnds(db: D1Database, jobs: string[], settled: PromiseSettledResult<unknown>[], now: number): Promise<void> {
  await recording(jobs, () => {
    const d = drizzle(db);
    const [first, ...more] = jobs.map((job, i) => {
      const end = settled[i]!;
      const ended = end.status === "fulfilled" ? { failed: false, error: null, lastOkAt: now } : { failed: true, error: errorText(end.reason) };
      return d
        .update(cronJobRuns)
        .set({ finishedAt: now, ...ended })
        .where(eq(cronJobRuns.job, job));
    });
    return d.batch([first!, ...more]);
  });
}

async function recording(jobs: string[], write: () => Promise<unknown>): Promise<void> {
  if (jobs.length === 0) return;
  try {
    await write();
  } catch (err) {
    logLine("error", "cron_record_failed", { jobs }, err);
  }
}

/** What is stored of a failure: errorMessage leaves out the parameters a failed query's message names. */
function errorText(error: unknown): string {
  return errorMessage(error).slice(0, ERROR_TEXT_MAX);
}

/** Every scheduled job with its latest run and what that says, in `jobs`' order. */
export async function jobStatuses(db: D1Database, jobs: readonly ScheduledJob[], now: number): Promise<CronJobStatus[]> {
  const rows = await drizzle(db).select().from(cronJobRuns);
  const byJob = new Map(rows.map((r) => [r.job, r]));
  return jobs.map(({ name, cron, everyMs }) => {
    const run = byJob.get(name);
    return {
      job: name,
      cron,
      every_ms: everyMs,
      state: stateOf(run, everyMs, now),
      last_started_at: run?.startedAt ?? null,
      last_finished_at: run?.finishedAt ?? null,
      last_ok_at: run?.lastOkAt ?? null,
      error: run?.failed ? run.error : null,
    };
  });
}

/**
 * Which of the states a job is in: a start older than its interval (and the grace) says the trigger
 * stopped, whatever the last run did, so that comes first.
 */
function stateOf(run: typeof cronJobRuns.$inferSelect | undefined, everyMs: number, now: number): CronJobState {
  if (run === undefined) return "never_ran";
  if (now - run.startedAt > everyMs + LATE_AFTER_MS) return "overdue";
  if (run.finishedAt === null) return now - run.startedAt > CUT_OFF_AFTER_MS ? "unfinished" : "running";
  return run.failed ? "failed" : "ok";
}
