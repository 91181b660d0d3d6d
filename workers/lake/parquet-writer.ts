import type { KeyValue } from "hyparquet";
import type { ColumnSource } from "hyparquet-writer";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { ARROW_SCHEMA } from "./arrow-schema.ts";
import { compressors, LAKE_CODEC } from "./codec.ts";
import { COLUMN_KINDS, LAKE_SCHEMA, type EventRow } from "./columns.ts";

/**
 * Rows per row group. A decoded group of detail rows costs about 0.7 KB a row as JS values, so 25,000
 * rows keep one group near 16 MB: writer, reader and compactor each hold at most one group (and the
 * report one output group besides), far inside a Worker's 128 MB (docs/lake.md has the numbers).
 */
export const ROW_GROUP_ROWS = 25_000;

const CREATED_BY = "zapmeter lake (hyparquet-writer 0.17)";

const utf8 = new TextEncoder();
/** Past this many distinct values a column is taken for unique per row (ids, recipients): no reuse. */
const REUSED_VALUES = 256;

/**
 * A string column as UTF-8, every value a view of one buffer. Given JS strings the writer encodes
 * each value with TextEncoder (a native call and a new buffer each) and orders string statistics
 * value by value; bytes made here cost a JS copy (ASCII, which ids and codes are; other text goes
 * through `encodeInto`): Parquet encoding is ~1.3–1.6× faster (docs/lake.md, "What a flush
 * costs"). While a column has shown few distinct values (client, status, category, country, phone
 * number, template, source) a repeat reuses the first value's view, which the writer's dictionary
 * then matches by identity.
 */
function utf8Column(rows: EventRow[], i: number): (Uint8Array | null)[] {
  let capacity = 0;
  for (const r of rows) {
    const v = r[i];
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair, two units, is 4).
    if (typeof v === "string") capacity += v.length * 3;
  }
  const buffer = new Uint8Array(capacity);
  const reused = new Map<string, Uint8Array>();
  let at = 0;
  return rows.map((r) => {
    const v = r[i];
    if (typeof v !== "string") return null;
    const reusing = reused.size < REUSED_VALUES;
    const known = reusing ? reused.get(v) : undefined;
    if (known) return known;
    const start = at;
    let k = 0;
    for (; k < v.length; k++) {
      const c = v.charCodeAt(k);
      if (c > 0x7f) break;
      buffer[at + k] = c;
    }
    at += k === v.length ? k : utf8.encodeInto(v, buffer.subarray(at)).written;
    const bytes = buffer.subarray(start, at);
    if (reusing) reused.set(v, bytes);
    return bytes;
  });
}

/**
 * Each column's encoding, the same in every file: values few per file (client, status, category,
 * country, template, error code, ...) in a dictionary; ids, recipients and times PLAIN (a message's
 * statuses seldom meet in one flush, and a dictionary of them made files 1.7× larger). Left to
 * hyparquet-writer, the choice depends on a file's rows (a one-row flush is PLAIN, a large one
 * dictionary), and fastparquet (2026.9, under pandas 3) returns None for text values when the files
 * it reads together mix the two. Booleans are PLAIN: left to it a chunk of more than 16 is RLE, which
 * fastparquet cannot read with nulls in a v2 page.
 */
const PLAIN_COLUMNS = new Set(["event_id", "message_id", "recipient", "occurred_at", "received_at", "billable"]);
const ENCODINGS = EVENT_COLUMNS.map((name) => (PLAIN_COLUMNS.has(name) ? "PLAIN" : "RLE_DICTIONARY"));

function columnData(rows: EventRow[]): ColumnSource[] {
  return EVENT_COLUMNS.map((name, i) => ({
    name,
    data: COLUMN_KINDS[i] === "string" ? utf8Column(rows, i) : rows.map((r) => r[i] ?? null),
    encoding: ENCODINGS[i],
  }));
}

function parquetWriter(writer: ByteWriter): ParquetWriter {
  return new ParquetWriter({ writer, schema: LAKE_SCHEMA, codec: LAKE_CODEC, compressors, statistics: true, createdBy: CREATED_BY, kvMetadata: [ARROW_SCHEMA] });
}

/** Encodes detail rows as one Parquet file in memory (a flush's rows for one partition). */
export function encodeParquet(rows: EventRow[]): Uint8Array<ArrayBuffer> {
  const writer = new ByteWriter();
  const pw = parquetWriter(writer);
  pw.write({ columnData: columnData(rows), rowGroupSize: ROW_GROUP_ROWS });
  pw.finish();
  return new Uint8Array(writer.getBuffer());
}

/** Receives a finished piece of a Parquet file; returning a promise applies backpressure. */
export type ByteSink = (bytes: Uint8Array<ArrayBuffer>) => void | Promise<void>;

/** A ByteWriter that hands its bytes to a sink after every row group instead of growing forever. */
class SinkWriter extends ByteWriter {
  private readonly sink: ByteSink;

  constructor(sink: ByteSink) {
    super(1 << 20);
    this.sink = sink;
  }

  private drain(): void | Promise<void> {
    if (this.index === 0) return;
    const bytes = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    return this.sink(bytes);
  }

  flush(): void | Promise<void> {
    return this.drain();
  }

  override finish(): void | Promise<void> {
    return this.drain();
  }
}

/**
 * A Parquet file written row group by row group to a sink (an HTTP response, an R2 multipart
 * upload), so memory holds one row group however large the file. Rows are appended in any batches
 * (a source's small groups are merged): each full ROW_GROUP_ROWS goes out as one group.
 */
export class ParquetStream {
  private readonly pw: ParquetWriter;
  private group: EventRow[] = [];

  constructor(sink: ByteSink) {
    this.pw = parquetWriter(new SinkWriter(sink));
  }

  /** Buffers `rows`; resolves once any row group they filled is written to the sink. */
  async append(rows: Iterable<EventRow>): Promise<void> {
    for (const r of rows) {
      this.group.push(r);
      if (this.group.length === ROW_GROUP_ROWS) await this.writeGroup();
    }
  }

  /** Writes the rows left and the footer (with `kvMetadata`, known only at the end); the file is complete when this resolves. */
  async finish(kvMetadata?: KeyValue[]): Promise<void> {
    await this.writeGroup();
    if (kvMetadata) this.pw.kvMetadata = [ARROW_SCHEMA, ...kvMetadata];
    await this.pw.finish();
  }

  private async writeGroup(): Promise<void> {
    const rows = this.group;
    if (rows.length === 0) return;
    this.group = [];
    const written = this.pw.row_groups.length;
    await this.pw.write({ columnData: columnData(rows), rowGroupSize: rows.length });
    // The writer keeps each group's string min and max until the footer, as the values it was given:
    // views of that group's column buffers (utf8Column), which would keep every group's buffers
    // alive to the end of the file (~11 MiB a group). Copied, only their bytes stay.
    for (const group of this.pw.row_groups.slice(written)) {
      for (const { meta_data } of group.columns) {
        const stats = meta_data?.statistics;
        if (stats?.min_value instanceof Uint8Array) stats.min_value = stats.min_value.slice();
        if (stats?.max_value instanceof Uint8Array) stats.max_value = stats.max_value.slice();
      }
    }
  }
}
