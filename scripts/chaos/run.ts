import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HELP, commandLine } from "../command-line.ts";
import { ROOT } from "../local-stack.ts";
import { killRestart } from "./kill-restart.ts";
import { soak } from "./soak.ts";

const USAGE = `usage: npm run test:chaos [-- options]: the long fault runs against a real wrangler dev (docs/correctness.md)
  --seed N          ground-truth seed (default: drawn, and printed so a failure can be replayed)
  --kills N         SIGKILLs of the whole stack during the kill/restart run (default 3)
  --messages N      messages per client in the kill/restart run (default 400)
  --minutes N       soak length (default 10)
  --max-slope MiB   allowed workerd RSS growth per minute after warm-up (default 2)
  --only kill|soak  run one scenario
Writes .tmp/chaos-report.json and exits non-zero on any difference, error or memory growth.`;

const { values, fail } = commandLine(
  {
    options: {
      ...HELP,
      seed: { type: "string" },
      kills: { type: "string", default: "3" },
      messages: { type: "string", default: "400" },
      minutes: { type: "string", default: "10" },
      "max-slope": { type: "string", default: "2" },
      only: { type: "string" },
    },
  },
  USAGE,
);
// A misspelt scenario would run nothing and report every invariant held.
if (values.only !== undefined && values.only !== "kill" && values.only !== "soak") fail(`unknown scenario --only ${values.only}: name kill or soak`);
const count = (option: "seed" | "kills" | "messages" | "minutes", min: number): number => {
  const n = Number(values[option]);
  if (!/^\d+$/.test(values[option]!) || n < min) fail(`--${option} ${values[option]}: expected a whole number from ${min}`);
  return n;
};
const kills = count("kills", 0);
const messages = count("messages", 1);
const minutes = count("minutes", 1);
const seed = values.seed !== undefined ? count("seed", 0) : Math.floor(Math.random() * 2 ** 31);
const maxSlope = Number(values["max-slope"]);
if (!Number.isFinite(maxSlope)) fail(`--max-slope ${values["max-slope"]}: expected a number`);
console.log(`chaos: seed ${seed} (replay with --seed ${seed})`);

const reports = [];
const failures: string[] = [];
if (!values.only || values.only === "kill") {
  const r = await killRestart(seed, messages, kills);
  console.log(JSON.stringify(r, null, 2));
  reports.push(r);
  if (r.kills !== kills) failures.push(`kill-restart: ${r.kills} of ${kills} kills happened`);
  if (r.errors.length > 0) failures.push(`kill-restart: ${r.errors.length} requests failed`);
  if (r.differences > 0) failures.push(`kill-restart: ${r.differences} differences`);
}
if (!values.only || values.only === "soak") {
  const r = await soak(seed + 1, minutes);
  console.log(JSON.stringify(r, null, 2));
  reports.push(r);
  if (r.errors.length > 0) failures.push(`soak: ${r.errors.length} requests failed`);
  if (r.resent > 0) failures.push(`soak: ${r.resent} requests had to be sent again`);
  if (r.differences > 0) failures.push(`soak: ${r.differences} differences`);
  if (r.rss.slopeMiBPerMin > maxSlope) failures.push(`soak: workerd RSS grows ${r.rss.slopeMiBPerMin} MiB/min (> ${maxSlope})`);
}

mkdirSync(join(ROOT, ".tmp"), { recursive: true });
writeFileSync(join(ROOT, ".tmp", "chaos-report.json"), JSON.stringify({ seed, reports, failures }, null, 2));
console.log(failures.length === 0 ? `chaos: all invariants held (seed ${seed})` : `chaos: FAILED (seed ${seed})\n${failures.join("\n")}`);
process.exit(failures.length === 0 ? 0 : 1);
