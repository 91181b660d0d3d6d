import { seqShard } from "../../durable-objects/client-shards.ts";
import { effectiveParts, listParts, partKey, type Part } from "./layout.ts";
import { ParquetStream } from "./parquet-writer.ts";
import { openAhead, type Opening } from "./read-ahead.ts";
import { NotParquet, type PartReader } from "./reader.ts";
import { R2Upload } from "./r2-upload.ts";
import { parseSources, SOURCES_KEY, type SourceEntry } from "./sources.ts";

export interface CompactionResult {
  key: string;
  rows: number;
  replaced: string[];
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
  const { live, superseded } = effectiveParts(await listParts(bucket, clientId, date));
  // Each is covered by a live file already.
  await deleteKeys(bucket, superseded.map((p) => p.key));
  const out: CompactionResult[] = [];
  for (const parts of Map.groupBy(live, (p) => seqShard(p.first)).values()) if (parts.length > 1) out.push(await compactParts(bucket, clientId, date, parts));
  return out;
}

/** Writes `live` (one shard's files of a partition, in seq order) as one file, then deletes them. */
async function compactParts(bucket: R2Bucket, clientId: string, date: string, live: Part[]): Promise<CompactionResult> {
  const key = partKey(clientId, date, live[0]!.first, Math.max(...live.map((p) => p.last)));
  const upload = new R2Upload(bucket, key, { httpMetadata: { contentType: "application/vnd.apache.parquet" } });
  const file = new ParquetStream((bytes) => upload.write(bytes));
  const sources: SourceEntry[] = [];
  let row = 0;
  try {
    for await (const opening of openAhead(bucket, live)) row += await copyPart(opening, file, row, sources);
    await file.finish([{ key: SOURCES_KEY, value: JSON.stringify(sources) }]);
    await upload.close();
  } catch (err) {
    await upload.abort();
    throw err;
  }
  const replaced = live.map((p) => p.key);
  await deleteKeys(bucket, replaced);
  return { key, rows: row, replaced };
}

/**
 * Appends one small file's rows to `file` and its ranges to `sources`; returns its row count. A
 * failure names the file: when it keeps failing, that is the one an operator removes (an error's
 * cause does not cross the object's RPC, its message does).
 */
async function copyPart({ part, opened }: Opening<PartReader>, file: ParquetStream, row: number, sources: SourceEntry[]): Promise<number> {
  try {
    const reader = await opened;
    const rows = Number(reader.metadata.num_rows);
    // A compacted source keeps its own map, shifted, so a reader two compactions late still finds its slice.
    for (const [f, l, s, e] of parseSources(reader.metadata.key_value_metadata)) sources.push([f, l, row + s, row + e]);
    sources.push([part.first, part.last, row, row + rows]);
    for await (const batch of reader.rows()) await file.append(batch);
    return rows;
  } catch (err) {
    if (err instanceof NotParquet) throw err;
    throw new Error(`reading ${part.key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** R2 deletes at most 1,000 keys per call. */
async function deleteKeys(bucket: R2Bucket, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
}
