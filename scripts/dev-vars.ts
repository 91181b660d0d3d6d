import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { ROOT } from "./local-stack.ts";

/**
 * A value of `.dev.vars` as `wrangler dev` binds it: wrangler reads the file with dotenv (quotes,
 * inline comments, `export `, spaces around `=`), which Node's parseEnv follows. A script signing
 * with the raw text of the line would disagree with the Worker, e.g. keep a secret's quotes.
 */
export function devVar(name: string, file = join(ROOT, ".dev.vars")): string {
  const value = parseEnv(readFileSync(file, "utf8"))[name];
  if (value === undefined) throw new Error(`${name} missing from ${file}`);
  return value;
}
