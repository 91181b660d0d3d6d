import { spawn } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, onTestFinished } from "vitest";
import { isRunning } from "../../scripts/process-tree.ts";
import { freePort } from "../../scripts/local-stack.ts";
import { NODE, cleanup, readPid, sandbox, waitFor } from "./script-sandbox.ts";

/**
 * `npm start` (scripts/start.ts) must not leave wrangler dev behind, holding its port, when it is
 * stopped while wrangler dev starts up (which can take two minutes): the fake wrangler dev here
 * answers /health only after a minute, so every stop below lands in the startup.
 */
const STARTING_FOR_A_MINUTE = { DEMO: "0", FAKE_HEALTH_DELAY_MS: "60000" };

describe("npm start stopped while wrangler dev starts up", () => {
  it("stops wrangler dev when start.ts gets SIGTERM", async () => {
    const dir = sandbox();
    const pidFile = join(dir, "fake-wrangler.pid");
    const port = await freePort();
    const start = spawn(NODE, [join(dir, "scripts", "start.ts")], {
      env: { ...process.env, ...STARTING_FOR_A_MINUTE, PORT: String(port), FAKE_PID_FILE: pidFile },
      stdio: "ignore",
    });
    let devServer: number | null = null;
    onTestFinished(() => cleanup(dir, [start.pid, devServer]));
    expect(await waitFor(() => readPid(pidFile) !== null, 30_000)).toBe(true);
    devServer = readPid(pidFile)!;
    await sleep(300);
    const exited = new Promise<number | null>((r) => start.once("exit", r));
    start.kill("SIGTERM");
    const code = await exited;
    expect(isRunning(devServer)).toBe(false);
    expect(code).toBe(0);
  });

  it("stops wrangler dev and exits when its parent (npm) goes away", async () => {
    const dir = sandbox();
    const pidFile = join(dir, "fake-wrangler.pid");
    const startPidFile = join(dir, "start.pid");
    const port = await freePort();
    // npm's role: starts start.ts, and is gone once wrangler dev runs.
    const npm = spawn(
      NODE,
      [
        "-e",
        `const fs = require("fs");
const [node, script, startPidFile, pidFile] = process.argv.slice(1);
const start = require("child_process").spawn(node, [script], { stdio: "ignore" });
fs.writeFileSync(startPidFile, String(start.pid));
setInterval(() => fs.existsSync(pidFile) && process.exit(0), 50);`,
        NODE,
        join(dir, "scripts", "start.ts"),
        startPidFile,
        pidFile,
      ],
      { env: { ...process.env, ...STARTING_FOR_A_MINUTE, PORT: String(port), FAKE_PID_FILE: pidFile }, stdio: "ignore" },
    );
    let startPid: number | null = null;
    let devServer: number | null = null;
    onTestFinished(() => cleanup(dir, [startPid, devServer]));
    await new Promise((r) => npm.once("exit", r));
    startPid = readPid(startPidFile)!;
    devServer = readPid(pidFile)!;
    // The parent watch looks once a second.
    expect(await waitFor(() => !isRunning(startPid!) && !isRunning(devServer!), 5_000)).toBe(true);
  });
});
