import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { buildPages } from "./dashboard-build.ts";
import { CHILD_ENV, ROOT } from "./local-stack.ts";

/**
 * `npm test`: builds the dashboard, then runs the suites — inside workerd, node-side, end to end
 * against a real wrangler dev with headless Chromium, and chaos — and prints one closing line
 * `tests: N passed, M failed`; a type error in any tsconfig counts as a failure, and the chaos suite's
 * kill/restart scenario runs last. `npm test -- workers` (or node, e2e, chaos) runs only those suites,
 * without the typecheck.
 */
const SUITES = [
  { name: "workers", config: "vitest.config.ts" },
  { name: "node", config: "test/node/vitest.config.ts" },
  { name: "e2e", config: "test/e2e/vitest.config.ts" },
];
const only = process.argv.slice(2);
// A misspelt name would run nothing and pass.
const unknown = only.filter((name) => name !== "chaos" && !SUITES.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown suite ${unknown.join(", ")}: name workers, node, e2e or chaos`);
  process.exit(2);
}
/** A failure message's first line, without the colour codes vitest puts in it. */
function firstLine(message: string | undefined): string {
  return (message ?? "no message").replace(/\u001b\[[0-9;]*m/g, "").split("\n")[0]!.slice(0, 300);
}

const reports = join(ROOT, ".tmp", "test-reports");
rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

let passed = 0;
let failed = 0;
let skipped = 0;
// Named again just above the closing line: a CI log is often read from its tail only.
const failures: string[] = [];

try {
  buildPages();
} catch (err) {
  // The suites still run (only e2e serves the dashboard), and the closing line still comes.
  failed += 1;
  failures.push(`dashboard build: ${firstLine((err as Error).message)}`);
}

if (only.length === 0) {
  console.log("\n=== typecheck ===");
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const projects = ["tsconfig.json", "tsconfig.node.json", "tsconfig.node-tests.json", "pages/tsconfig.json"];
  const bad = projects.filter((p) => spawnSync(process.execPath, [tsc, "-p", p, "--noEmit"], { cwd: ROOT, stdio: "inherit" }).status !== 0);
  // A type error fails the run like a failing test, counted once per project.
  if (bad.length > 0) console.error(`typecheck failed: ${bad.join(", ")}`);
  for (const p of bad) failures.push(`typecheck: ${p}`);
  failed += bad.length;
}
for (const suite of SUITES.filter((s) => only.length === 0 || only.includes(s.name))) {
  const out = join(reports, `${suite.name}.json`);
  console.log(`\n=== ${suite.name} tests ===`);
  const run = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules", "vitest", "vitest.mjs"), "run", "--config", suite.config, "--passWithNoTests", "--allowOnly=false", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`],
    { cwd: ROOT, stdio: "inherit", env: CHILD_ENV },
  );
  if (!existsSync(out)) {
    console.error(`${suite.name}: vitest produced no report (exit ${run.status}); counting the suite as failed`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(out, "utf8")) as {
    numTotalTests: number;
    testResults: { name: string; status: string; message?: string; assertionResults: { status: string; fullName: string; failureMessages?: string[] }[] }[];
  };
  let suiteFailed = 0;
  for (const file of r.testResults) {
    const where = `${suite.name}: ${relative(ROOT, file.name)}`;
    const results = file.assertionResults;
    const failedHere = results.filter((a) => a.status === "failed");
    // "pending" is a test that started and never reported: its worker died (vitest still calls the file passed).
    const unfinished = results.filter((a) => a.status === "pending");
    const notRun = results.filter((a) => a.status === "skipped" || a.status === "todo");
    passed += results.filter((a) => a.status === "passed").length;
    for (const a of failedHere) failures.push(`${where} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
    suiteFailed += failedHere.length + unfinished.length;
    if (unfinished.length > 0) failures.push(`${where}: ${unfinished.length} tests never finished (its worker died?)`);
    // A file that failed with no failing test did not load or failed in a hook (Chromium missing):
    // the tests it skipped are failures, and at least one is.
    if (file.status === "failed" && failedHere.length === 0 && unfinished.length === 0) {
      suiteFailed += Math.max(1, notRun.length);
      failures.push(`${where}: ${firstLine(file.message)}`);
    } else skipped += notRun.length;
  }
  if (r.numTotalTests === 0) {
    suiteFailed += 1;
    failures.push(`${suite.name}: no tests found (see its config's include)`);
  }
  failed += suiteFailed;
  // Unhandled errors fail a run whose tests all passed.
  if (run.status !== 0 && suiteFailed === 0) {
    failed += 1;
    failures.push(`${suite.name}: vitest exited ${run.status} with every test passed (an unhandled error; see its output above)`);
  }
}
// The kill/restart scenario of the chaos suite (SIGKILL mid-load, restart on persisted state, invariant
// checked): one pass or fail by its exit status. The long soak stays in `npm run test:chaos`.
if (only.length === 0 || only.includes("chaos")) {
  console.log("\n=== chaos: kill and restart ===");
  const chaos = spawnSync(process.execPath, [join(ROOT, "scripts", "chaos", "run.ts"), "--only", "kill"], { cwd: ROOT, stdio: "inherit", env: CHILD_ENV });
  if (chaos.status === 0) passed += 1;
  else {
    failed += 1;
    failures.push(`chaos: the kill/restart scenario exited ${chaos.status}`);
  }
}
if (failures.length > 0) console.log(`\nfailed:\n${failures.map((f) => `  ${f}`).join("\n")}`);
console.log(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed === 0 ? 0 : 1);
