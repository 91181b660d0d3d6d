import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { cronJobRuns, revokedSessions } from "../../schema/db.ts";
import { scheduled } from "../../workers/scheduled.ts";
import { admin, authed, call, db, runCron, signIn, unique, withClock, withMethods } from "./helpers.ts";

const NIGHTLY = "30 3 * * *";
const NIGHTLY_JOBS = ["lake.compaction", "auth.purge", "dead_letters.expire"];

interface JobStatus {
  job: string;
  cron: string;
  every_ms: number;
  state: string;
  last_started_at: number | null;
  last_finished_at: number | null;
  last_ok_at: number | null;
  error: string | null;
}

/** `GET /v1/admin/jobs` by job; `token` minted on the clock in force when the test moves it past the file's session. */
async function jobs(token?: string): Promise<Record<string, JobStatus>> {
  const res = await call("/v1/admin/jobs", authed(token ?? (await admin())));
  expect(res.status).toBe(200);
  const body = (await res.json()) as { jobs: JobStatus[] };
  return Object.fromEntries(body.jobs.map((j) => [j.job, j]));
}

/** The nightly cron as workerd runs it, against `DB` instead of the binding; what it threw, if it did. */
async function nightlyWith(DB: D1Database, at: number): Promise<unknown> {
  try {
    await scheduled({ cron: NIGHTLY, scheduledTime: at, noRetry() {} }, { ...env, DB });
    return undefined;
  } catch (err) {
    return err;
  }
}

/** D1 whose statements touching `table` fail as a lost connection; the rest go through. */
function d1FailingOn(table: RegExp): D1Database {
  return withMethods(env.DB, {
    prepare: (query: string) => {
      if (table.test(query)) throw new Error("D1_ERROR: Network connection lost.");
      return env.DB.prepare(query);
    },
  });
}

describe("the Cron Trigger jobs' runs", () => {
  it("records each job's start and end, and lists every job with its cron and interval", async () => {
    const before = Date.now();
    await runCron(NIGHTLY, before);
    const listed = await jobs();
    expect(Object.keys(listed).sort()).toEqual(["auth.purge", "billing.daily", "dead_letters.expire", "lake.compaction"]);
    expect(listed["billing.daily"]).toMatchObject({ cron: "*/10 * * * *", every_ms: 600_000 });
    for (const job of NIGHTLY_JOBS) {
      const run = listed[job]!;
      expect(run).toMatchObject({ cron: NIGHTLY, every_ms: 86_400_000, state: "ok", error: null });
      expect(run.last_started_at).toBeGreaterThanOrEqual(before);
      expect(run.last_finished_at).toBeGreaterThanOrEqual(run.last_started_at!);
      expect(run.last_ok_at).toBe(run.last_finished_at);
    }
  });

  it("tells a failed job by its error, keeping its last success, while the cron's other jobs still run", async () => {
    await runCron(NIGHTLY, Date.now());
    const lastOk = (await jobs())["auth.purge"]!.last_ok_at;
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});

    const thrown = await nightlyWith(d1FailingOn(/login_failures/), Date.now());
    errors.mockRestore();

    expect(String(thrown)).toBe("Error: cron 30 3 * * *: auth.purge failed");
    const listed = await jobs();
    expect(listed["auth.purge"]).toMatchObject({ state: "failed", error: "D1_ERROR: Network connection lost.", last_ok_at: lastOk });
    expect(listed["dead_letters.expire"]).toMatchObject({ state: "ok", error: null });
    // Its next success clears the failure.
    await runCron(NIGHTLY, Date.now());
    expect((await jobs())["auth.purge"]).toMatchObject({ state: "ok", error: null });
  });

  it("calls a job overdue once no run started within its cron's interval and 15 minutes", async () => {
    const start = Date.now();
    await withClock(() => start, () => runCron(NIGHTLY, start));
    const at = (ms: number) => withClock(() => start + ms, async () => jobs(await signIn("admin")));

    expect((await at(86_400_000 + 900_000))["auth.purge"]!.state).toBe("ok");
    expect((await at(86_400_000 + 900_001))["auth.purge"]!.state).toBe("overdue");
  });

  it("tells a run still going from one the runtime cut off, which never records its end", async () => {
    const started = Date.now();
    // What a run's start writes, with no end after it.
    await db()
      .insert(cronJobRuns)
      .values({ job: "billing.daily", startedAt: started, finishedAt: null })
      .onConflictDoUpdate({ target: cronJobRuns.job, set: { startedAt: started, finishedAt: null } });
    const at = (ms: number) => withClock(() => started + ms, () => jobs());

    expect((await at(900_000))["billing.daily"]!.state).toBe("running");
    expect((await at(900_001))["billing.daily"]!.state).toBe("unfinished");
  });

  it("runs the jobs when their runs cannot be recorded, and says so in the log", async () => {
    const expired = unique("jti");
    await db().insert(revokedSessions).values({ jti: expired, expiresAt: Date.now() - 1 });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});

    const thrown = await nightlyWith(d1FailingOn(/cron_job_runs/), Date.now());
    const lines = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as { event: string; jobs?: string[] });
    errors.mockRestore();

    expect(thrown).toBeUndefined();
    expect(await db().select().from(revokedSessions).where(eq(revokedSessions.jti, expired))).toEqual([]);
    expect(lines.filter((l) => l.event === "cron_record_failed")).toEqual([
      expect.objectContaining({ jobs: NIGHTLY_JOBS }),
      expect.objectContaining({ jobs: NIGHTLY_JOBS }),
    ]);
  });

  it("gives each job's state in /health, which stays 200 whatever they are", async () => {
    await runCron(NIGHTLY, Date.now());
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    await nightlyWith(d1FailingOn(/login_failures/), Date.now());
    errors.mockRestore();

    const res = await call("/health");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { jobs: Record<string, string> };
    expect(body.jobs).toMatchObject({ "auth.purge": "failed", "dead_letters.expire": "ok", "lake.compaction": "ok" });
    expect(Object.keys(body.jobs).sort()).toEqual(["auth.purge", "billing.daily", "dead_letters.expire", "lake.compaction"]);
  });

  it("answers /health 503 unhealthy, naming D1, when the jobs' runs cannot be read", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await call("/health", {}, { DB: d1FailingOn(/cron_job_runs/) });
    errors.mockRestore();

    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: { code: "unhealthy", message: "a storage dependency is not answering", details: { d1: false, r2: true } } });
  });
});
