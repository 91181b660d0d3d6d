import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HELP, commandLine } from "./command-line.ts";
import { buildPages } from "./dashboard-build.ts";
import { ROOT } from "./local-stack.ts";
import { readOrigins } from "../workers/dashboard-origins.ts";

/**
 * `npm run deploy`: build the dashboard, apply D1 migrations to the remote database, deploy the Worker
 * (with its Durable Objects, crons and static assets). The one-time account setup (D1 database,
 * R2 bucket, secrets) is in the README; this refuses to run while wrangler.toml holds the placeholder
 * database id, and the deployed Worker answers 503 until every secret is set (workers/security.ts).
 * `--dry-run` builds and bundles everything without an account and touches nothing remote.
 */
const USAGE = `usage: npm run deploy [-- --dry-run]
  (no option)  build the dashboard, apply D1 migrations to the remote database, wrangler deploy
  --dry-run    build the dashboard and bundle the Worker into dist/ (wrangler deploy --dry-run): no account needed, nothing remote
Non-interactive (CI): set CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID instead of \`wrangler login\`.`;

const options = commandLine({ options: { ...HELP, "dry-run": { type: "boolean" } } }, USAGE).values;

const wrangler = (...args: string[]) => {
  try {
    execFileSync(process.execPath, [join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), ...args], { cwd: ROOT, stdio: "inherit" });
  } catch (err) {
    // wrangler has said why on the inherited stderr; a stack trace of this script would only hide it.
    console.error(`\`wrangler ${args.join(" ")}\` failed (exit ${(err as { status?: number }).status ?? "?"}); nothing after it ran.`);
    process.exit(1);
  }
};

if (options["dry-run"]) {
  buildPages();
  wrangler("deploy", "--dry-run", "--outdir", "dist");
  console.log("dry run: dashboard built, Worker bundled into dist/; nothing was deployed.");
  process.exit(0);
}

const config = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
if (config.includes('database_id = "00000000-0000-0000-0000-000000000000"')) {
  console.error("wrangler.toml still has the placeholder D1 database_id: run `npx wrangler d1 create zapmeter` and paste its id (README, Deploy).");
  process.exit(1);
}
const { unreadable } = readOrigins(/^DASHBOARD_ORIGIN\s*=\s*"([^"]*)"/m.exec(config)?.[1] ?? "");
if (unreadable.length > 0) {
  console.error(`wrangler.toml's DASHBOARD_ORIGIN lists ${unreadable.join(", ")}: each entry must be a URL such as https://zapmeter-dashboard.pages.dev (docs/live.md).`);
  process.exit(1);
}
buildPages();
wrangler("d1", "migrations", "apply", "DB", "--remote");
wrangler("deploy");
