import type { ReportFormat, ReportTimes } from "../../schema/api.ts";
import { seqShard } from "../../durable-objects/client-shards.ts";
import { ApiError } from "../errors.ts";
import { logLine } from "../log.ts";
import type { EventRow } from "./columns.ts";
import { datesInRange, effectiveParts, listPartPages, type Part } from "./layout.ts";
import { ParquetStream } from "./parquet-writer.ts";
import { openAhead, type Opening } from "./read-ahead.ts";
import { openPart, PartGone, type PartReader, type RowFilter } from "./reader.ts";
import { CSV_HEADER, csvLines } from "./report-csv.ts";
import { sourceRange } from "./sources.ts";

/**
 * The client's detail rows matching `filter`, partition by partition (only the UTC dates in range),
 * one row group at a time (row groups outside the range skipped by their statistics).
 */
export async function* reportRows(bucket: R2Bucket, clientId: string, filter: RowFilter): AsyncGenerator<EventRow[]> {
  for (const date of datesInRange(filter.from, filter.to)) {
    const { live } = effectiveParts(await settledParts(bucket, clientId, date));
    for await (const opening of openAhead(bucket, live)) yield* partRows(bucket, clientId, date, opening, filter);
  }
}

/** Listings of a partition a reader makes before it gives up on the partition holding still. */
const MAX_LISTINGS = 4;

/**
 * The partition's part files as one consistent view. R2 lists up to 1,000 keys a call, and a day of
 * minute flushes holds 1,440 files a shard; between two calls a compaction can write its file into
 * the keys already listed (it sorts by its first seq) and delete small files not yet listed, so the
 * listing holds neither. Compaction writes before it deletes, so a listing that the next one repeats
 * saw no such change; one call sees the partition at one moment.
 */
async function settledParts(bucket: R2Bucket, clientId: string, date: string): Promise<Part[]> {
  let listing = await listPartPages(bucket, clientId, date);
  for (let listings = 1; listing.pages > 1; listings++) {
    if (listings === MAX_LISTINGS) throw new ApiError(503, "lake_busy", `the lake partition of ${date} kept changing while it was listed; retry`);
    const again = await listPartPages(bucket, clientId, date);
    if (repeats(listing.parts, again.parts)) return again.parts;
    listing = again;
  }
  return listing.parts;
}

/**
 * Whether `next` repeats `prev` but for new flushes: nothing gone, and every file added is a shard's
 * flush after all of its files `prev` saw. A hot client's shards flush about once a second between
 * them, so listings of its day (a page per 1,000 files) seldom agree exactly; a compaction's file
 * covers ranges `prev` saw and its deletions remove them, so it is still caught.
 */
function repeats(prev: Part[], next: Part[]): boolean {
  const nextKeys = new Set(next.map((p) => p.key));
  if (prev.some((p) => !nextKeys.has(p.key))) return false;
  const seen = new Set(prev.map((p) => p.key));
  const lastOfShard = new Map<number, number>();
  for (const p of prev) lastOfShard.set(seqShard(p.last), Math.max(lastOfShard.get(seqShard(p.last)) ?? 0, p.last));
  return next.every((p) => seen.has(p.key) || (seqShard(p.first) === seqShard(p.last) && p.first > (lastOfShard.get(seqShard(p.first)) ?? 0)));
}

/**
 * Rows of one part. When a compaction replaced the part after it was listed (before it was opened,
 * or once it was opened ahead, or between two of its row groups: a file over 8 MiB is read by
 * ranges), the rest of its rows are read from the compacted file's slice that holds them (the file
 * records where each source landed, in the part's own order, and which of its rows an erasure removed).
 */
async function* partRows(bucket: R2Bucket, clientId: string, date: string, { part, opened }: Opening<PartReader>, filter: RowFilter): AsyncGenerator<EventRow[]> {
  const given = { rows: 0 };
  try {
    const reader = await opened;
    yield* rowsOnward(reader, 0, reader.groupEnds.at(-1) ?? 0, filter, given);
  } catch (err) {
    if (!(err instanceof PartGone)) throw err;
    const cover = effectiveParts(await settledParts(bucket, clientId, date)).live.find((l) => l.first <= part.first && part.last <= l.last);
    if (!cover) throw err;
    const compacted = await openPart(bucket, cover);
    const range = sourceRange(compacted.metadata.key_value_metadata, part, given.rows);
    if (!range) throw err;
    given.rows = range.given;
    yield* rowsOnward(compacted, range.start, range.end, filter, given);
  }
}

/**
 * Rows [start, end) of `reader` from `given.rows` on, a row group at a time, counting in `given`
 * the rows whose group is done (a group's rows go out together, or not at all when its read fails).
 */
async function* rowsOnward(reader: PartReader, start: number, end: number, filter: RowFilter, given: { rows: number }): AsyncGenerator<EventRow[]> {
  for (const groupEnd of reader.groupEnds) {
    const from = start + given.rows;
    const to = Math.min(groupEnd, end);
    if (to <= from) continue;
    yield* reader.rows(from, to, filter);
    given.rows = to - start;
  }
}

/**
 * The report as a byte stream: CSV (header, RFC 4180, UTF-8, times as `times` says) or a Parquet file
 * with the lake's schema. Resolves once the lake has given its first rows (or said it has none),
 * before the answer's status and headers go: R2 not answering, or a partition that kept changing
 * while it was listed, is then an error the caller retries (503), not a 200 cut short.
 */
export async function reportStream(
  bucket: R2Bucket,
  clientId: string,
  filter: RowFilter,
  format: ReportFormat,
  times: ReportTimes,
): Promise<ReadableStream<Uint8Array>> {
  const rows = await started(reportRows(bucket, clientId, filter));
  const chunks = format === "csv" ? csvChunks(rows, times) : parquetChunks(rows);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (err) {
        // Headers are gone by now: the client sees an aborted download, the log says why.
        logLine("error", "report_stream_failed", { client_id: clientId }, err);
        controller.error(err);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

/** `source` with its first result read now (its failure thrown here), then served again with the rest. */
async function started<T>(source: AsyncGenerator<T>): Promise<AsyncGenerator<T>> {
  const first = await source.next();
  return (async function* () {
    try {
      if (first.done) return;
      yield first.value;
      yield* source;
    } finally {
      await source.return(undefined);
    }
  })();
}

async function* csvChunks(rows: AsyncIterable<EventRow[]>, times: ReportTimes): AsyncGenerator<Uint8Array> {
  const utf8 = new TextEncoder();
  yield utf8.encode(CSV_HEADER);
  for await (const batch of rows) yield utf8.encode(csvLines(batch, times));
}

async function* parquetChunks(rows: AsyncIterable<EventRow[]>): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const file = new ParquetStream((bytes) => {
    out.push(bytes);
  });
  for await (const batch of rows) {
    await file.append(batch);
    yield* out.splice(0);
  }
  await file.finish();
  yield* out.splice(0);
}
