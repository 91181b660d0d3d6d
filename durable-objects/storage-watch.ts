import { logLine, type LogLevel } from "../workers/log.ts";

/**
 * What one SQLite-backed Durable Object may store (Workers Paid). Past it every write that needs a
 * page fails with SQLITE_FULL, ingest included, while reads and drops still work.
 */
export const OBJECT_STORAGE_LIMIT_BYTES = 10_000_000_000;

/**
 * Shares of the limit past which an object says so (docs/operations.md, "What to watch"): at 70 %
 * there are weeks left to grow the client's shards, at 90 % days.
 */
const WARN_SHARE = 0.7;
const ERROR_SHARE = 0.9;
/** The alarm runs about once a minute while the client sends; one line an hour is enough to alert on. */
const REPEAT_MS = 3_600_000;

/** Logs `counter_storage_high` from an object's alarm while its database nears the per-object limit. */
export class StorageWatch {
  private loggedAt = Number.NEGATIVE_INFINITY;
  private loggedLevel: LogLevel | null = null;

  /** Logs when `bytes` is past a threshold, at most once an hour unless the level rose meanwhile. */
  check(bytes: number, now: number, fields: Record<string, unknown>): void {
    const share = bytes / OBJECT_STORAGE_LIMIT_BYTES;
    const level: LogLevel | null = share >= ERROR_SHARE ? "error" : share >= WARN_SHARE ? "warn" : null;
    if (level === null) return;
    const rose = level === "error" && this.loggedLevel === "warn";
    if (now - this.loggedAt < REPEAT_MS && !rose) return;
    this.loggedAt = now;
    this.loggedLevel = level;
    const line = { ...fields, storage_bytes: bytes, storage_limit_bytes: OBJECT_STORAGE_LIMIT_BYTES, percent: Math.floor(share * 100) };
    // Each level written out: test/node/operations-doc.test.ts finds the logged events by it.
    if (level === "error") logLine("error", "counter_storage_high", line);
    else logLine("warn", "counter_storage_high", line);
  }
}
