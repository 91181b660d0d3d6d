import type { z } from "zod";

/** One problem with one field of a request, as error `details` and dead letters list it. */
export interface FieldIssue {
  /** Dotted path of the field (`entry.0.changes.1.value.statuses.2.id`); "" for the whole value. */
  path: string;
  message: string;
}

/**
 * A zod error as the field issues a caller reads: the first problem of each field only. zod goes on
 * checking a field after its first failure, so `"bitcoin"` as a currency would also be "not a
 * currency we know", and a date of `garbage` both "not a date" and "not YYYY-MM-DD": saying one
 * thing per field is what the caller can act on. `prefix` is where the validated value sits in the
 * request.
 */
export function fieldIssues(error: z.ZodError, prefix = ""): FieldIssue[] {
  const byPath = new Map<string, string>();
  for (const i of error.issues) {
    const path = [prefix, ...i.path].filter((p) => p !== "").join(".");
    if (!byPath.has(path)) byPath.set(path, i.message);
  }
  return [...byPath].map(([path, message]) => ({ path, message }));
}
