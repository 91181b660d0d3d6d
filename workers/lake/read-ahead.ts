import type { Part } from "./layout.ts";
import { bytesHeldOpen, openPart, type PartReader } from "./reader.ts";

/**
 * Files opened at once, the one being read among them: an invocation has at most six calls waiting
 * for an answer (R2's among them) and a seventh waits for one of those
 * (developers.cloudflare.com/workers/platform/limits, "Simultaneous open connections"); one is left
 * for the rest of the work, the compacted file's upload or a large file's next row group.
 */
export const READ_AHEAD_FILES = 5;
/**
 * Bytes held by opened files not read yet, the one being read among them (`bytesHeldOpen`): an
 * object's isolate has 128 MB, shared with its other work.
 */
export const READ_AHEAD_BYTES = 16 << 20;

export interface Opening<T> {
  part: Part;
  /** The part's open, already under way; awaiting it throws what opening it threw. */
  opened: Promise<T>;
}

/**
 * `parts` in order, each with its open started ahead of the caller's reading: up to READ_AHEAD_FILES
 * and READ_AHEAD_BYTES counting the one being read (and always that one), which counts until the
 * caller asks for the next. A day of minute flushes is ~1,000 files of a few KB: read one after
 * another, R2's latency per GET (tens of ms; 1.9 s for the whole copy of such a day on local disk)
 * would be most of a compaction or a report of it.
 */
export async function* readAhead<T>(parts: readonly Part[], open: (part: Part) => Promise<T>): AsyncGenerator<Opening<T>> {
  const ahead: Opening<T>[] = [];
  let held = 0;
  let next = 0;
  while (next < parts.length || ahead.length > 0) {
    while (next < parts.length && ahead.length < READ_AHEAD_FILES && (ahead.length === 0 || held + bytesHeldOpen(parts[next]!) <= READ_AHEAD_BYTES)) {
      const part = parts[next++]!;
      const opened = open(part);
      // Awaited in order by the caller, who may stop before reaching it: not an unhandled rejection.
      opened.catch(() => {});
      ahead.push({ part, opened });
      held += bytesHeldOpen(part);
    }
    const head = ahead[0]!;
    yield head;
    ahead.shift();
    held -= bytesHeldOpen(head.part);
  }
}

/** The lake files `parts` read ahead from `bucket`. */
export function openAhead(bucket: R2Bucket, parts: readonly Part[]): AsyncGenerator<Opening<PartReader>> {
  return readAhead(parts, (part) => openPart(bucket, part));
}
