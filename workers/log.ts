export type LogLevel = "info" | "warn" | "error";

/**
 * One structured JSON log line, for code with or without a request (Durable Objects, crons). Callers
 * never pass personal data: recipients are masked upstream. An error is logged by name and message
 * (`errorFields`).
 */
export function logLine(level: LogLevel, event: string, fields: Record<string, unknown> = {}, err?: unknown): void {
  const line: Record<string, unknown> = { level, event, ...fields };
  if (err !== undefined) line.error = errorFields(err);
  console[level](JSON.stringify(line));
}

/** The settings lines `logOnce` wrote, by event and value: read on every request, said once per isolate. */
const loggedOnce = new Set<string>();

/**
 * A line about a setting the Worker cannot read, written once per isolate and value: every request
 * reads the setting, and one line says what a line per request would.
 */
export function logOnce(level: LogLevel, event: string, value: string | undefined, fields: Record<string, unknown>): void {
  const key = `${event}\0${value ?? ""}`;
  if (loggedOnce.has(key)) return;
  loggedOnce.add(key);
  logLine(level, event, { value: value ?? null, ...fields });
}

/**
 * An error's message fit for a log line or a stored failure. drizzle's failed query names its
 * statement's parameters in its message (`\nparams: …`: a new password's hash, the email a sign-in
 * was tried with): the statement, whose values are placeholders, and the driver's error say what failed.
 */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message.replace(/\nparams: [\s\S]*$/, "") : String(err);
}

/** An error's name and message, and its cause's (a wrapped failed query's too: errorMessage). */
function errorFields(err: unknown): Record<string, string> | string {
  if (!(err instanceof Error)) return String(err);
  const fields: Record<string, string> = { name: err.name, message: errorMessage(err) };
  if (err.cause instanceof Error) fields.cause = `${err.cause.name}: ${errorMessage(err.cause)}`;
  return fields;
}
