import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, buildPages } from "./local-stack.ts";

/**
 * `npm run deploy`: build the dashboard, apply D1 migrations to the remote database, deploy the Worker
 * (with its Durable Objects, crons and static assets). The one-time account setup (D1 database,
 * R2 bucket, secrets) is in the README; this refuses to run while wrangler.toml holds the placeholder
 * database id, and the deployed Worker answers 503 until every secret is set (workers/security.ts).
 */
const config = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
if (config.includes('database_id = "00000000-0000-0000-0000-000000000000"')) {
  console.error("wrangler.toml still has the placeholder D1 database_id: run `npx wrangler d1 create zapmeter` and paste its id (README, Deploy).");
  process.exit(1);
}
const wrangler = (...args: string[]) =>
  execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), ...args], { cwd: ROOT, stdio: "inherit" });

buildPages();
wrangler("d1", "migrations", "apply", "DB", "--remote");
wrangler("deploy");
