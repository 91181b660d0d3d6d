import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { freePort } from "../../scripts/local-stack.ts";
import { isRunning } from "../../scripts/process-tree.ts";
import { NODE, cleanup, readPid, sandbox } from "./script-sandbox.ts";

/**
 * RunningStack.stop() (scripts/local-stack.ts) of a wrangler dev slow to shut down: the process it
 * spawned is wrangler's wrapper, whose child, the CLI, owns the port (and workerd). Killing the
 * wrapper alone would leave the CLI running; the chaos, e2e and bench stacks then start again or
 * delete the state under it.
 */
describe("RunningStack.stop() of a wrangler dev that ignores SIGTERM", () => {
  it("kills the process that holds the port too, and resolves only once it is gone", async () => {
    const dir = sandbox();
    const pidFile = join(dir, "fake-wrangler.pid");
    const port = await freePort();
    const driver = join(dir, "driver.ts");
    writeFileSync(
      driver,
      `import { startWrangler } from "./scripts/local-stack.ts";
const stack = await startWrangler({ port: ${port}, log: "ignore" });
await stack.stop();
const health = await fetch(stack.url + "/health").then((r) => r.status, () => "refused");
console.log(JSON.stringify({ health }));`,
    );
    let devServer: number | null = null;
    onTestFinished(() => cleanup(dir, [devServer]));
    const run = spawnSync(NODE, [driver], { cwd: dir, encoding: "utf8", timeout: 30_000, env: { ...process.env, FAKE_PID_FILE: pidFile, FAKE_IGNORE_TERM: "1" } });
    devServer = readPid(pidFile);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1)!)).toEqual({ health: "refused" });
    expect(isRunning(devServer!)).toBe(false);
  });
});
