import type { KeyValue } from "hyparquet";
import type { Part } from "./layout.ts";

/**
 * Key-value metadata of a compacted file: where each replaced part's rows landed, as
 * `[[first_seq, last_seq, row_start, row_end, erased?], ...]`. A reader that listed a part just before a
 * compaction removed it reads exactly that slice of the compacted file instead. `erased`, written by a
 * recipient's erasure only, lists the rows of the part (numbered as the part held them) that the
 * slice no longer holds, so a reader that had read part of the part still resumes at the right row.
 */
export const SOURCES_KEY = "zapmeter.sources";

export type SourceEntry = [first: number, last: number, rowStart: number, rowEnd: number, erased?: number[]];

/** The source map of a file's key-value metadata (empty for a file written by a flush). */
export function parseSources(kv: KeyValue[] | undefined): SourceEntry[] {
  const value = kv?.find((e) => e.key === SOURCES_KEY)?.value;
  return value ? (JSON.parse(value) as SourceEntry[]) : [];
}

/**
 * Where the rows of `part` that a reader had not read yet lie in the compacted file, when it was one
 * of its sources: rows [start, end), `given` of the part's rows having been read (minus those of them
 * an erasure removed since).
 */
export function sourceRange(kv: KeyValue[] | undefined, part: Pick<Part, "first" | "last">, given: number): { start: number; end: number; given: number } | null {
  const e = parseSources(kv).find(([f, l]) => f === part.first && l === part.last);
  if (!e) return null;
  const gone = (e[4] ?? []).filter((r) => r < given).length;
  return { start: e[2], end: e[3], given: given - gone };
}

/**
 * `later`, rows removed from what was left after `earlier` went (numbered as that rest), added to
 * `earlier`, in the numbering before both: a part erased twice still names its own rows.
 */
export function mergeErased(earlier: readonly number[], later: readonly number[]): number[] {
  const out = [...earlier];
  let k = 0;
  for (const j of later) {
    let row = j + k;
    while (k < earlier.length && earlier[k]! <= row) row = j + ++k;
    out.push(row);
  }
  return out.sort((a, b) => a - b);
}
