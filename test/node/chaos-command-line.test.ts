import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { NODE, cleanup, readPid, sandbox } from "./script-sandbox.ts";

/**
 * `npm run test:chaos` (scripts/chaos/run.ts) refuses a command line it would misread: a misspelt
 * --only ran no scenario and reported every invariant held. Run in a sandbox, whose wrangler is a
 * fake, so that a runner that does start a scenario starts no real stack.
 */
describe("npm run test:chaos command line", () => {
  const chaos = (...args: string[]) => {
    const dir = sandbox();
    const pidFile = join(dir, "fake-wrangler.pid");
    onTestFinished(() => cleanup(dir, [readPid(pidFile)]));
    const run = spawnSync(NODE, [join(dir, "scripts", "chaos", "run.ts"), ...args], { cwd: dir, encoding: "utf8", timeout: 30_000, env: { ...process.env, FAKE_PID_FILE: pidFile } });
    return { status: run.status, stderr: run.stderr, reported: existsSync(join(dir, ".tmp", "chaos-report.json")) };
  };

  it("refuses an unknown --only scenario with exit 2, naming the scenarios, and runs nothing", () => {
    const run = chaos("--only", "kil");
    expect(run).toMatchObject({ status: 2, reported: false });
    expect(run.stderr).toMatch(/unknown scenario --only kil: name kill or soak/);
  });

  it.each([
    ["--kills", "three"],
    ["--messages", "1e3"],
    ["--minutes", "0"],
    ["--seed", "x"],
  ])("refuses %s %s with exit 2: not a count it can run", (option, value) => {
    const run = chaos("--only", option === "--minutes" ? "soak" : "kill", option, value);
    expect(run).toMatchObject({ status: 2, reported: false });
    expect(run.stderr).toContain(`${option} ${value}: expected a whole number`);
  });
});
