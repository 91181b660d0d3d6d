import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { cronMatches, cronsOf } from "../../scripts/local-crons.ts";
import { JOB_CRONS } from "../../workers/scheduled.ts";

const at = (iso: string) => new Date(iso);

describe("local Cron Triggers (npm start)", () => {
  it("reads the crons of wrangler.toml, which are exactly the ones the Worker has jobs for", () => {
    const crons = cronsOf(readFileSync(new URL("../../wrangler.toml", import.meta.url), "utf8"));
    expect(crons).toEqual(["*/10 * * * *", "30 3 * * *"]);
    expect([...JOB_CRONS].sort()).toEqual([...crons].sort());
  });

  it("matches minutes as cron does", () => {
    expect(["00", "10", "50"].map((m) => cronMatches("*/10 * * * *", at(`2026-11-30T14:${m}:00Z`)))).toEqual([true, true, true]);
    expect(cronMatches("*/10 * * * *", at("2026-11-30T14:05:00Z"))).toBe(false);
    expect(cronMatches("30 3 * * *", at("2026-11-30T03:30:00Z"))).toBe(true);
    expect(cronMatches("30 3 * * *", at("2026-11-30T04:30:00Z"))).toBe(false);
    expect(cronMatches("0 9-17/4 * * 1-5", at("2026-11-30T13:00:00Z"))).toBe(true);
    expect(cronMatches("0 9-17/4 * * 1-5", at("2026-11-29T13:00:00Z"))).toBe(false);
    expect(cronMatches("0 0 1,15 * *", at("2026-11-15T00:00:00Z"))).toBe(true);
    // Both day fields restricted: either one matching fires it.
    expect(cronMatches("0 0 1 * 1", at("2026-11-30T00:00:00Z"))).toBe(true);
    expect(() => cronMatches("0 0 * JAN *", at("2026-11-30T00:00:00Z"))).toThrow(/unsupported/);
  });
});
