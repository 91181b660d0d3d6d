import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../local-stack.ts";
import { killRestart } from "./kill-restart.ts";
import { soak } from "./soak.ts";

/**
 * `npm run test:chaos`: the long fault runs against a real `wrangler dev` (docs/correctness.md).
 *   --seed N          ground-truth seed (default: drawn, and printed so a failure can be replayed)
 *   --kills N         SIGKILLs of the whole stack during the kill/restart run (default 3)
 *   --messages N      messages per client in the kill/restart run (default 400)
 *   --minutes N       soak length (default 10)
 *   --max-slope MiB   allowed workerd RSS growth per minute after warm-up (default 2)
 *   --only kill|soak  run one scenario
 * Writes .tmp/chaos-report.json and exits non-zero on any difference, error or memory growth.
 */
const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    kills: { type: "string", default: "3" },
    messages: { type: "string", default: "400" },
    minutes: { type: "string", default: "10" },
    "max-slope": { type: "string", default: "2" },
    only: { type: "string" },
  },
});
const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const kills = Number(values.kills);
const maxSlope = Number(values["max-slope"]);
console.log(`chaos: seed ${seed} (replay with --seed ${seed})`);

const reports = [];
const failures: string[] = [];
if (!values.only || values.only === "kill") {
  const r = await killRestart(seed, Number(values.messages), kills);
  console.log(JSON.stringify(r, null, 2));
  reports.push(r);
  if (r.kills !== kills) failures.push(`kill-restart: ${r.kills} of ${kills} kills happened`);
  if (r.errors.length > 0) failures.push(`kill-restart: ${r.errors.length} requests failed`);
  if (r.differences > 0) failures.push(`kill-restart: ${r.differences} differences`);
}
if (!values.only || values.only === "soak") {
  const r = await soak(seed + 1, Number(values.minutes));
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
