import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { cronsOf, parseCron } from "../../scripts/local-crons.ts";
import { freePort } from "../../scripts/local-stack.ts";
import { JOB_CRONS, SCHEDULED_JOBS } from "../../workers/scheduled.ts";
import { NODE, cleanup, readPid, sandbox } from "./script-sandbox.ts";

const fires = (cron: string, iso: string) => parseCron(cron).matches(new Date(iso));

describe("local Cron Triggers (npm start)", () => {
  it("reads the crons of wrangler.toml, which are exactly the ones the Worker has jobs for", () => {
    const crons = cronsOf(readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8"));
    expect(crons).toEqual(["*/10 * * * *", "30 3 * * *"]);
    expect([...JOB_CRONS].sort()).toEqual([...crons].sort());
  });

  it("gives each job the interval its cron fires at, which tells when the job is overdue", () => {
    for (const { cron, everyMs } of SCHEDULED_JOBS) {
      const { matches } = parseCron(cron);
      const start = Date.parse("2026-12-31T00:00:00Z");
      const firings = Array.from({ length: 3 * 1440 }, (_, i) => start + i * 60_000).filter((t) => matches(new Date(t)));
      const gaps = new Set(firings.slice(1).map((t, i) => t - firings[i]!));
      expect([cron, [...gaps]]).toEqual([cron, [everyMs]]);
    }
  });

  it("matches minutes as cron does", () => {
    expect(["00", "10", "50"].map((m) => fires("*/10 * * * *", `2026-11-30T14:${m}:00Z`))).toEqual([true, true, true]);
    expect(fires("*/10 * * * *", "2026-11-30T14:05:00Z")).toBe(false);
    expect(fires("30 3 * * *", "2026-11-30T03:30:00Z")).toBe(true);
    expect(fires("30 3 * * *", "2026-11-30T04:30:00Z")).toBe(false);
    expect(fires("0 9-17/4 * * *", "2026-11-30T13:00:00Z")).toBe(true);
    expect(fires("0 9-17/4 * * *", "2026-11-30T15:00:00Z")).toBe(false);
    expect(fires("0 0 1,15 * *", "2026-11-15T00:00:00Z")).toBe(true);
    expect(fires("0 0 * 12 *", "2026-11-30T00:00:00Z")).toBe(false);
  });

  // developers.cloudflare.com/workers/configuration/cron-triggers: "0 17 * * sun or 0 17 * * 1" is
  // 5PM on Sunday, "10 7 * * mon-fri or 10 7 * * 2-6" 7:10AM on weekdays.
  it("numbers the days of the week as Cloudflare does: 1-7 from Sunday, not cron's 0-6", () => {
    const at17 = (day: string) => `2026-${day}T17:00:00Z`;
    const week = ["11-29", "11-30", "12-01", "12-02", "12-03", "12-04", "12-05"]; // Sunday to Saturday
    expect(week.map((d) => fires("0 17 * * 1", at17(d)))).toEqual([true, false, false, false, false, false, false]);
    expect(week.map((d) => fires("0 17 * * 7", at17(d)))).toEqual([false, false, false, false, false, false, true]);
    expect(week.map((d) => fires("0 17 * * 2-6", at17(d)))).toEqual([false, true, true, true, true, true, false]);
  });

  it("takes day and month names, in any case", () => {
    expect(fires("0 17 * * sun", "2026-11-29T17:00:00Z")).toBe(true);
    expect(fires("0 17 * * MON-FRI", "2026-12-05T17:00:00Z")).toBe(false);
    expect(fires("0 17 * * MON-FRI", "2026-12-04T17:00:00Z")).toBe(true);
    expect(fires("0 0 * Nov *", "2026-11-30T00:00:00Z")).toBe(true);
    expect(fires("0 0 * JAN,FEB *", "2026-11-30T00:00:00Z")).toBe(false);
  });

  it("fires when either day field matches if both are restricted", () => {
    expect(fires("0 0 1 * 2", "2026-11-30T00:00:00Z")).toBe(true); // a Monday, not the 1st
    expect(fires("0 0 30 * 1", "2026-11-30T00:00:00Z")).toBe(true); // the 30th, not a Sunday
    expect(fires("0 0 1 * 1", "2026-11-30T00:00:00Z")).toBe(false);
  });

  it.each([
    ["0 0 * * 6L", /day of week "6L" is not supported \(1-7 or SUN-SAT\)/],
    ["0 0 L * *", /day of month "L" is not supported/],
    ["0 0 * * 2#1", /day of week "2#1" is not supported/],
    ["0 0 ? * 2", /day of month "\?" is not supported/],
    ["0 0 * * 0", /day of week "0" is not supported \(1-7 or SUN-SAT\)/],
    ["0 0 * * FRI-MON", /runs backwards/],
    ["0 24 * * *", /hour "24" is not supported/],
    ["*/0 * * * *", /unsupported step/],
    ["0 0 * *", /not five fields/],
  ])("refuses %s, saying why", (cron, reason) => {
    expect(() => parseCron(cron)).toThrow(reason);
  });

  it("npm start refuses a cron it cannot fire as Cloudflare would before starting wrangler dev", async () => {
    const dir = sandbox();
    const pidFile = join(dir, "fake-wrangler.pid");
    onTestFinished(() => cleanup(dir, [readPid(pidFile)]));
    const toml = join(dir, "wrangler.toml");
    writeFileSync(toml, readFileSync(toml, "utf8").replace('"30 3 * * *"', '"30 3 * * 6L"'));
    const run = spawnSync(NODE, [join(dir, "scripts", "start.ts")], {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, PORT: String(await freePort()), DEMO: "0", FAKE_PID_FILE: pidFile },
    });
    expect(existsSync(pidFile)).toBe(false);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('zapmeter: cron "30 3 * * 6L": day of week "6L" is not supported');
  });
});
