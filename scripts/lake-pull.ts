import { parseArgs } from "node:util";
import { pullLocalR2 } from "./local-r2.ts";

/**
 * `npm run lake:pull -- [dir] [--prefix lake/]`: the local stack's R2 objects under the prefix, as
 * files in `dir` (default `lake-local`), for DuckDB and friends (docs/lake.md, "Querying").
 */
const USAGE = "usage: npm run lake:pull -- [dir (default lake-local)] [--prefix lake/ | billing/ | dlq/]";
let args;
try {
  args = parseArgs({ options: { prefix: { type: "string", default: "lake/" }, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
} catch (err) {
  console.error(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.values.help || args.positionals.length > 1) {
  console.log(USAGE);
  process.exit(args.values.help ? 0 : 2);
}
const dir = args.positionals[0] ?? "lake-local";
try {
  const keys = await pullLocalR2(args.values.prefix, dir);
  console.log(`${keys.length} objects under ${args.values.prefix} copied into ${dir}/`);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
