export type LogLevel = "info" | "warn" | "error";

/**
 * One structured JSON log line, for code with or without a request (Durable Objects, crons). Callers
 * never pass personal data: recipients are masked upstream. An error is logged by name and message.
 */
export function logLine(level: LogLevel, event: string, fields: Record<string, unknown> = {}, err?: unknown): void {
  const line: Record<string, unknown> = { level, event, ...fields };
  if (err !== undefined) line.error = err instanceof Error ? { name: err.name, message: err.message } : String(err);
  console[level](JSON.stringify(line));
}
