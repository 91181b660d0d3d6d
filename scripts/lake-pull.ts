import { HELP, commandLine } from "./command-line.ts";
import { pullLocalR2 } from "./local-r2.ts";

/**
 * `npm run lake:pull -- [dir] [--prefix lake/]`: the local stack's R2 objects under the prefix, as
 * files in `dir` (default `lake-local`), for DuckDB and friends (docs/lake.md, "Querying").
 */
const USAGE = "usage: npm run lake:pull -- [dir (default lake-local)] [--prefix lake/ | billing/ | dlq/]";
const args = commandLine({ options: { ...HELP, prefix: { type: "string", default: "lake/" } }, allowPositionals: true }, USAGE);
if (args.positionals.length > 1) args.fail("one directory at most");
const dir = args.positionals[0] ?? "lake-local";
try {
  const keys = await pullLocalR2(args.values.prefix, dir);
  console.log(`${keys.length} objects under ${args.values.prefix} copied into ${dir}/`);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
