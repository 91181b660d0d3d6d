import type { AsyncBuffer, FileMetaData, ParquetParsers } from "hyparquet";
import { parquetMetadataAsync, parquetRead } from "hyparquet";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { decompressors } from "./codec.ts";
import { OCCURRED_AT, STATUS, type EventRow } from "./columns.ts";
import type { Part } from "./layout.ts";

/** Files up to this size are fetched in one GET (most flush files); larger ones by row-group ranges. */
const WHOLE_FILE_BYTES = 8 << 20;
/** A file read by ranges fetches its end this long for the footer (hyparquet's default), and holds it until its first row group. */
const FOOTER_FETCH_BYTES = 512 << 10;

function readByRanges(part: Part): boolean {
  return part.size > WHOLE_FILE_BYTES;
}

/** The bytes an opened `part` holds in memory until its rows are read: the whole file, or its footer's fetch. */
export function bytesHeldOpen(part: Part): number {
  return readByRanges(part) ? FOOTER_FETCH_BYTES : part.size;
}

/** Times stay epoch ms numbers end to end, as at rest everywhere else. */
const parsers: Partial<ParquetParsers> = { timestampFromMilliseconds: (ms: bigint) => Number(ms) };

/** Which rows a report wants: occurred_at in [from, to), optionally only some statuses. */
export interface RowFilter {
  from: number;
  to: number;
  statuses?: ReadonlySet<string>;
}

/** Raised when a part listed a moment ago is gone (a compaction replaced it). */
export class PartGone extends Error {}

/** Raised when a lake file's bytes are not Parquet: no retry reads it, an operator must remove it. */
export class NotParquet extends Error {
  constructor(
    readonly key: string,
    cause: unknown,
  ) {
    super(`${key} is not a Parquet file`, { cause });
  }
}

/** An R2 object read by byte ranges; reads inside the current window (a row group) cost no request. */
class R2File implements AsyncBuffer {
  private window: { start: number; bytes: ArrayBuffer } | null = null;
  private readonly bucket: R2Bucket;
  private readonly key: string;
  readonly byteLength: number;

  constructor(bucket: R2Bucket, key: string, byteLength: number) {
    this.bucket = bucket;
    this.key = key;
    this.byteLength = byteLength;
  }

  async load(start: number, end: number): Promise<void> {
    const obj = await this.bucket.get(this.key, { range: { offset: start, length: end - start } });
    if (!obj) throw new PartGone(this.key);
    this.window = { start, bytes: await obj.arrayBuffer() };
  }

  async slice(start: number, end = this.byteLength): Promise<ArrayBuffer> {
    const w = this.window;
    if (!w || start < w.start || end > w.start + w.bytes.byteLength) await this.load(start, end);
    const { start: s, bytes } = this.window!;
    return bytes.slice(start - s, end - s);
  }
}

async function open(bucket: R2Bucket, part: Part): Promise<{ file: AsyncBuffer; load?: (s: number, e: number) => Promise<void> }> {
  if (readByRanges(part)) {
    const file = new R2File(bucket, part.key, part.size);
    return { file, load: (s, e) => file.load(s, e) };
  }
  const obj = await bucket.get(part.key);
  if (!obj) throw new PartGone(part.key);
  const bytes = await obj.arrayBuffer();
  return { file: { byteLength: bytes.byteLength, slice: (s, e) => bytes.slice(s, e) } };
}

function numberOf(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Date) return v.getTime();
  return undefined;
}

/** Whether a row group's min/max statistics rule out every row the filter wants. */
function groupExcluded(meta: FileMetaData, group: number, filter: RowFilter): boolean {
  const cols = meta.row_groups[group]!.columns;
  const t = cols[OCCURRED_AT]?.meta_data?.statistics;
  const min = numberOf(t?.min_value);
  const max = numberOf(t?.max_value);
  if (min !== undefined && min >= filter.to) return true;
  if (max !== undefined && max < filter.from) return true;
  if (filter.statuses) {
    const s = cols[STATUS]?.meta_data?.statistics;
    const smin = s?.min_value;
    const smax = s?.max_value;
    if (typeof smin === "string" && typeof smax === "string" && ![...filter.statuses].some((st) => st >= smin && st <= smax)) return true;
  }
  return false;
}

/** First row of each row group, plus the total, for row-range reads. */
function groupStarts(meta: FileMetaData): number[] {
  const starts = [0];
  for (const g of meta.row_groups) starts.push(starts.at(-1)! + Number(g.num_rows));
  return starts;
}

/** Byte range of a row group's column chunks. */
function groupBytes(meta: FileMetaData, group: number): [number, number] {
  let start = Number.POSITIVE_INFINITY;
  let end = 0;
  for (const c of meta.row_groups[group]!.columns) {
    const md = c.meta_data!;
    const s = Number(md.dictionary_page_offset ?? md.data_page_offset);
    start = Math.min(start, s);
    end = Math.max(end, s + Number(md.total_compressed_size));
  }
  return [start, end];
}

export interface PartReader {
  metadata: FileMetaData;
  /** The row each row group ends before, in order: the last is the file's row count. */
  groupEnds: number[];
  /** Rows [rowStart, rowEnd) of the file in EVENT_COLUMNS order, one row group at a time. */
  rows(rowStart?: number, rowEnd?: number, filter?: RowFilter): AsyncGenerator<EventRow[]>;
}

/** Opens a lake file for reading one row group at a time. */
export async function openPart(bucket: R2Bucket, part: Part): Promise<PartReader> {
  const { file, load } = await open(bucket, part);
  const metadata = await parquetMetadataAsync(file, { parsers, initialFetchSize: FOOTER_FETCH_BYTES }).catch((err: unknown) => {
    // A file read whole is in memory, so its footer failing to parse is its bytes' fault; a large
    // file's footer is read from R2, whose failure a retry may outlive.
    throw load ? err : new NotParquet(part.key, err);
  });
  const starts = groupStarts(metadata);
  return {
    metadata,
    groupEnds: starts.slice(1),
    async *rows(rowStart = 0, rowEnd = starts.at(-1)!, filter?: RowFilter) {
      for (let g = 0; g < metadata.row_groups.length; g++) {
        const from = Math.max(rowStart, starts[g]!);
        const to = Math.min(rowEnd, starts[g + 1]!);
        if (from >= to || (filter && groupExcluded(metadata, g, filter))) continue;
        if (load) await load(...groupBytes(metadata, g));
        let rows: EventRow[] = [];
        await parquetRead({
          file,
          metadata,
          columns: EVENT_COLUMNS,
          rowStart: from,
          rowEnd: to,
          parsers,
          compressors: decompressors,
          onComplete: (r: unknown[][]) => {
            rows = r as EventRow[];
          },
        });
        if (filter) rows = rows.filter((r) => keep(r, filter));
        for (const r of rows) for (let i = 0; i < r.length; i++) r[i] ??= null;
        if (rows.length > 0) yield rows;
      }
    },
  };
}

function keep(row: EventRow, f: RowFilter): boolean {
  const t = row[OCCURRED_AT] as number;
  return t >= f.from && t < f.to && (!f.statuses || f.statuses.has(row[STATUS] as string));
}
