import type { KeyValue } from "hyparquet";
import type { Part } from "./layout.ts";

/**
 * Key-value metadata of a compacted file: where each replaced part's rows landed, as
 * `[[first_seq, last_seq, row_start, row_end], ...]`. A reader that listed a part just before a
 * compaction removed it reads exactly that slice of the compacted file instead.
 */
export const SOURCES_KEY = "zapmeter.sources";

export type SourceEntry = [first: number, last: number, rowStart: number, rowEnd: number];

/** The source map of a file's key-value metadata (empty for a file written by a flush). */
export function parseSources(kv: KeyValue[] | undefined): SourceEntry[] {
  const value = kv?.find((e) => e.key === SOURCES_KEY)?.value;
  return value ? (JSON.parse(value) as SourceEntry[]) : [];
}

/** Rows [start, end) of the compacted file that came from `part`, if it was one of its sources. */
export function sourceRange(kv: KeyValue[] | undefined, part: Pick<Part, "first" | "last">): [number, number] | null {
  const e = parseSources(kv).find(([f, l]) => f === part.first && l === part.last);
  return e ? [e[2], e[3]] : null;
}
