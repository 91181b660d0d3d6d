import { parseArgs, type ParseArgsConfig } from "node:util";

/** The `--help` option every script takes. */
export const HELP = { help: { type: "boolean", short: "h" } } as const;

/**
 * A script's command line, strict: `--help` prints `usage` and exits 0; an unknown option, or a value
 * the script calls wrong through `fail`, prints the reason and `usage` and exits 2 (a person typing
 * the command gets the usage, not a stack trace).
 */
export function commandLine<T extends ParseArgsConfig & { options: typeof HELP }>(
  config: T,
  usage: string,
): ReturnType<typeof parseArgs<T>> & { fail(reason: string): never } {
  const fail = (reason: string): never => {
    console.error(`${reason}\n${usage}`);
    process.exit(2);
  };
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs<T>({ ...config, strict: true });
  } catch (err) {
    return fail((err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return Object.assign(parsed, { fail });
}
