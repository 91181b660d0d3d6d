import { DAY_MS, utcDate, utcDayStart } from "../../schema/time.ts";

/** Root of the detail lake in R2 (DESIGN.md, "R2 layout"). */
const LAKE_PREFIX = "lake/notifications/";

/** `lake/notifications/client_id=<id>/`: every partition of one client. */
export function clientPrefix(clientId: string): string {
  return `${LAKE_PREFIX}client_id=${clientId}/`;
}

/** `lake/notifications/client_id=<id>/date=<YYYY-MM-DD>/`: one client's partition of one UTC day. */
export function partitionPrefix(clientId: string, date: string): string {
  return `${clientPrefix(clientId)}date=${date}/`;
}

/**
 * Key of the file holding a partition's rows from outbox seqs first..last. Deterministic in the
 * range, so a retried flush overwrites the object it wrote before instead of adding one.
 */
export function partKey(clientId: string, date: string, first: number, last: number): string {
  return `${partitionPrefix(clientId, date)}part-${first}-${last}.parquet`;
}

/**
 * Key of a file rewritten from `part` alone (a recipient's erasure of a partition's only file of a
 * shard): the same range, so it covers what `part` covered and no more, under another name, a zero
 * before its first seq, so that it is written before `part` is deleted. Of two files of one range
 * readers keep the one listed first (`effectiveParts`), and R2 lists `part-0…` before `part-1…`…
 * `part-9…`: the rewrite, whichever step a reader or a resumed job finds.
 */
export function rewrittenKey(part: Pick<Part, "key">): string {
  return part.key.replace(/\/part-(?=\d+-\d+\.parquet$)/, "/part-0");
}

export interface Part {
  key: string;
  first: number;
  last: number;
  size: number;
}

const PART_NAME = /\/part-(\d+)-(\d+)\.parquet$/;

/** A part file's outbox range, or null for any other object under the prefix. */
export function parsePart(key: string, size: number): Part | null {
  const m = PART_NAME.exec(key);
  return m ? { key, first: Number(m[1]), last: Number(m[2]), size } : null;
}

/**
 * Splits a partition's files into the ones to read and the ones superseded by a file whose range
 * contains theirs. A compacted file is written before the small files it replaces are deleted, and
 * a retried flush may rewrite a range a compaction already absorbed: in both windows readers keep
 * only the covering file, so they never see a row twice nor miss one.
 */
export function effectiveParts(parts: Part[]): { live: Part[]; superseded: Part[] } {
  const byWidth = [...parts].sort((a, b) => b.last - b.first - (a.last - a.first) || a.first - b.first);
  const live: Part[] = [];
  const superseded: Part[] = [];
  for (const p of byWidth) {
    if (live.some((l) => l.first <= p.first && p.last <= l.last)) superseded.push(p);
    else live.push(p);
  }
  live.sort((a, b) => a.first - b.first);
  return { live, superseded };
}

/** Every part file in one partition (all pages of the listing). */
export async function listParts(bucket: R2Bucket, clientId: string, date: string): Promise<Part[]> {
  return (await listPartPages(bucket, clientId, date)).parts;
}

/**
 * Every part file in one partition and how many list calls it took: one call is one view of the
 * partition, several are not (workers/lake/report.ts, `settledParts`).
 */
export async function listPartPages(bucket: R2Bucket, clientId: string, date: string): Promise<{ parts: Part[]; pages: number }> {
  const parts: Part[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: partitionPrefix(clientId, date), cursor });
    pages++;
    for (const o of page.objects) {
      const p = parsePart(o.key, o.size);
      if (p) parts.push(p);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { parts, pages };
}

/** UTC dates (YYYY-MM-DD) whose partitions can hold rows with occurred_at in [from, to). */
export function datesInRange(from: number, to: number): string[] {
  const out: string[] = [];
  for (let d = utcDayStart(utcDate(from)); d < to; d += DAY_MS) out.push(utcDate(d));
  return out;
}
