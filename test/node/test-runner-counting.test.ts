import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { NODE, cleanup, sandbox } from "./script-sandbox.ts";

/**
 * scripts/test.ts (`npm test`) run for real on a sandbox copy of the repository whose e2e suite is a
 * handful of tiny vitest files: how it counts, names and exits for the ways a suite can go wrong.
 * The sandbox's vite is a fake (instant build); vitest is the real one.
 */
const CONFIG = `import { defineConfig } from "vitest/config";
export default defineConfig({ test: { root: new URL("../..", import.meta.url).pathname, include: ["test/e2e/**/*.test.ts"], environment: "node" } });
`;

function runE2e(files: Record<string, string>, prepare: (dir: string) => void = () => {}): { status: number | null; tail: string; out: string } {
  const dir = sandbox();
  prepare(dir);
  onTestFinished(() => cleanup(dir, []));
  mkdirSync(join(dir, "test", "e2e"), { recursive: true });
  writeFileSync(join(dir, "test", "e2e", "vitest.config.ts"), CONFIG);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, "test", "e2e", name), text);
  // The outer vitest's own variables must not leak into the inner run.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VITEST") && k !== "NODE_OPTIONS" && k !== "TEST")) as NodeJS.ProcessEnv;
  const run = spawnSync(NODE, ["scripts/test.ts", "e2e"], { cwd: dir, env, encoding: "utf8", timeout: 120_000 });
  const out = `${run.stdout}\n${run.stderr}`.replace(/\u001b\[[0-9;]*m/g, "");
  return { status: run.status, out, tail: out.slice(out.lastIndexOf("\n=== e2e tests ===")) .split("\n").filter((l) => /^(failed:|  e2e|tests:)/.test(l)).join("\n") };
}

const FAILING = `import { expect, it } from "vitest";\nit("a real failure", () => expect(1).toBe(2));\n`;
/** What every dashboard e2e file does: launch Chromium in beforeAll; here the launch fails (no /usr/bin/chromium). */
const HOOK_FAILS = `import { beforeAll, describe, expect, it } from "vitest";
beforeAll(async () => { throw new Error("browserType.launch: Failed to launch chromium: /usr/bin/chromium not found"); });
describe("dashboard", () => { it("signs in", () => expect(1).toBe(1)); it("moves live", () => expect(1).toBe(1)); });
`;
/** A file whose worker process dies mid-file (OOM killer, a native crash). */
const WORKER_DIES = `import { expect, it } from "vitest";
it("before the crash", () => expect(1).toBe(1));
it("crashes the worker", async () => { process.kill(process.pid, "SIGKILL"); await new Promise((r) => setTimeout(r, 5000)); });
it("after the crash", () => expect(1).toBe(1));
`;

describe("scripts/test.ts: counting and exit status", () => {
  it("fails a suite that found no test at all (an include glob that matches nothing, every file moved away)", () => {
    const { status, tail } = runE2e({});
    expect(tail).toContain("e2e: no tests found");
    expect(tail).toContain("tests: 0 passed, 1 failed");
    expect(status, `npm test passed with zero tests run:\n${tail}`).not.toBe(0);
  });

  it("counts and names a file whose beforeAll failed (Chromium missing) as failed, not as skipped tests", () => {
    const { status, tail } = runE2e({ "a-fail.test.ts": FAILING, "dashboard.test.ts": HOOK_FAILS });
    expect(status).not.toBe(0);
    expect(tail, "the failure list should name the file whose hook failed").toContain("dashboard.test.ts");
    expect(tail).not.toMatch(/skipped/);
  });

  it("counts and names a file whose worker died mid-file", () => {
    const { status, tail } = runE2e({ "a-fail.test.ts": FAILING, "crash.test.ts": WORKER_DIES });
    expect(status).not.toBe(0);
    expect(tail, "the failure list should name the file whose worker died").toContain("crash.test.ts");
  });

  it("prints its closing `tests:` line (the one CI reads from the tail) when the dashboard build fails", () => {
    const { status, out } = runE2e({ "ok.test.ts": `import { expect, it } from "vitest";\nit("ok", () => expect(1).toBe(1));\n` }, (dir) =>
      writeFileSync(join(dir, "node_modules", "vite", "bin", "vite.js"), 'console.error("[vite] Transform failed: pages/src/main.tsx"); process.exit(1);\n'),
    );
    expect(status).not.toBe(0);
    expect(out, out.split("\n").filter(Boolean).slice(-6).join("\n")).toMatch(/^tests: \d+ passed, [1-9]\d* failed/m);
  });

  it("fails a run in which a stray `.only` left the other tests of a file unrun (.ci/run sets no CI variable)", () => {
    const { status, tail } = runE2e({
      "focus.test.ts": `import { expect, it } from "vitest";\nit.only("the one being debugged", () => expect(1).toBe(1));\nit("the check that now never runs", () => expect(1).toBe(2));\n`,
    });
    expect(status, tail).not.toBe(0);
  });
});
