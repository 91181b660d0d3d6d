import { seqShard } from "../../durable-objects/client-shards.ts";
import type { EventRow } from "./columns.ts";
import { effectiveParts, listParts, partKey, rewrittenKey, type Part } from "./layout.ts";
import { ParquetStream } from "./parquet-writer.ts";
import { openAhead, type Opening } from "./read-ahead.ts";
import { NotParquet, type PartReader } from "./reader.ts";
import { R2Upload } from "./r2-upload.ts";
import { mergeErased, parseSources, SOURCES_KEY, type SourceEntry } from "./sources.ts";

export interface CompactionResult {
  key: string;
  rows: number;
  replaced: string[];
  /** Rows left out (an erasure's); 0 for a compaction. */
  dropped: number;
}

/** What a partition's compaction did in all: the files it wrote, the small files they replaced, their rows. */
export function compactionTotals(results: CompactionResult[]): { files: string[]; replaced: number; rows: number } {
  return {
    files: results.map((r) => r.key),
    replaced: results.reduce((n, r) => n + r.replaced.length, 0),
    rows: results.reduce((n, r) => n + r.rows, 0),
  };
}

/**
 * Compacts one client-day partition into a single file per shard (a one-shard client's partition
 * into one file), streaming row group by row group. The new file is complete before any small file
 * is removed, and readers prefer a file whose outbox range covers another's
 * (workers/lake/layout.ts), so they never see a gap or a row twice. A sharded client's shards number
 * their seqs in separate bands: a file spanning two bands would cover, and hide, files a shard writes
 * later with seqs between. Returns the files written (none when each shard has one file already).
 */
export async function compactPartition(bucket: R2Bucket, clientId: string, date: string): Promise<CompactionResult[]> {
  const out: CompactionResult[] = [];
  for (const parts of await liveFilesByShard(bucket, clientId, date)) if (parts.length > 1) out.push(await compactParts(bucket, clientId, date, parts));
  return out;
}

/**
 * A partition's live files, each shard's apart and in seq order, once the files they cover are
 * deleted (a rewrite's leftovers: each is covered by a live file already). A sharded client's shards
 * number their seqs in separate bands, so a rewrite takes one shard's files at a time.
 */
export async function liveFilesByShard(bucket: R2Bucket, clientId: string, date: string): Promise<Part[][]> {
  const { live, superseded } = effectiveParts(await listParts(bucket, clientId, date));
  await deleteKeys(bucket, superseded.map((p) => p.key));
  return [...Map.groupBy(live, (p) => seqShard(p.first)).values()];
}

/** Rows a rewrite leaves out (a recipient's, in an erasure); a compaction keeps every row. */
export type RowDrop = (row: EventRow) => boolean;

/**
 * Writes `live` (one shard's files of a partition, in seq order) as one file, then deletes them;
 * without the rows `drop` picks, when given. One file alone keeps its range, under another key
 * (`rewrittenKey`): written first under its own key, it would be deleted with the file it replaced.
 * `written` is told of the file once it is complete, before the deletes: a rerun after they failed
 * finds the file covering the old ones and writes none, so what it did is counted there or not at all.
 */
export async function compactParts(
  bucket: R2Bucket,
  clientId: string,
  date: string,
  live: Part[],
  drop?: RowDrop,
  written?: (result: CompactionResult) => void,
): Promise<CompactionResult> {
  const key = live.length === 1 ? rewrittenKey(live[0]!) : partKey(clientId, date, live[0]!.first, Math.max(...live.map((p) => p.last)));
  const upload = new R2Upload(bucket, key, { httpMetadata: { contentType: "application/vnd.apache.parquet" } });
  const file = new ParquetStream((bytes) => upload.write(bytes));
  const sources: SourceEntry[] = [];
  let row = 0;
  let dropped = 0;
  try {
    for await (const opening of openAhead(bucket, live)) {
      const copied = await copyPart(opening, file, row, sources, drop);
      row += copied.rows;
      dropped += copied.dropped;
    }
    await file.finish([{ key: SOURCES_KEY, value: JSON.stringify(sources) }]);
    await upload.close();
  } catch (err) {
    await upload.abort();
    throw err;
  }
  const result = { key, rows: row, replaced: live.map((p) => p.key), dropped };
  written?.(result);
  await deleteKeys(bucket, result.replaced);
  return result;
}

/**
 * Appends one small file's rows (but those `drop` picks) to `file` and its ranges to `sources`;
 * returns the rows it appended and left out. A failure names the file: when it keeps failing, that is
 * the one an operator removes (an error's cause does not cross the object's RPC, its message does).
 */
async function copyPart({ part, opened }: Opening<PartReader>, file: ParquetStream, row: number, sources: SourceEntry[], drop?: RowDrop): Promise<{ rows: number; dropped: number }> {
  try {
    const reader = await opened;
    const erased: number[] = [];
    let read = 0;
    for await (const batch of reader.rows()) {
      await file.append(drop ? keptRows(batch, drop, read, erased) : batch);
      read += batch.length;
    }
    // A compacted source keeps its own map, shifted past what went before and what was dropped, so a
    // reader two compactions late still finds its slice. An entry of the part's own range (a file
    // rewritten alone before) gives way to the part's entry below, which numbers its rows as it holds them.
    const at = (r: number) => row + r - erased.filter((e) => e < r).length;
    for (const [f, l, s, e, before] of parseSources(reader.metadata.key_value_metadata)) {
      if (f === part.first && l === part.last) continue;
      const mine = erased.filter((r) => r >= s && r < e).map((r) => r - s);
      sources.push(withErased([f, l, at(s), at(e)], mergeErased(before ?? [], mine)));
    }
    sources.push(withErased([part.first, part.last, row, row + read - erased.length], erased));
    return { rows: read - erased.length, dropped: erased.length };
  } catch (err) {
    if (err instanceof NotParquet) throw err;
    throw new Error(`reading ${part.key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The rows of `batch` that `drop` does not pick; the others' numbers in the part (`first` on) go to `erased`. */
function keptRows(batch: EventRow[], drop: RowDrop, first: number, erased: number[]): EventRow[] {
  const kept: EventRow[] = [];
  for (const [i, r] of batch.entries()) {
    if (drop(r)) erased.push(first + i);
    else kept.push(r);
  }
  return kept;
}

/** `entry` with its erased rows, when there are any: a compaction's map stays as it always was. */
function withErased(entry: SourceEntry, erased: number[]): SourceEntry {
  return erased.length > 0 ? [entry[0], entry[1], entry[2], entry[3], erased] : entry;
}

/** R2 deletes at most 1,000 keys per call. */
async function deleteKeys(bucket: R2Bucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
}
