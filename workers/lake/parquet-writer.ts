import type { KeyValue } from "hyparquet";
import type { ColumnSource } from "hyparquet-writer";
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { compressors, LAKE_CODEC } from "./codec.ts";
import { LAKE_SCHEMA, type EventRow } from "./columns.ts";

/**
 * Rows per row group. A decoded group of detail rows costs about 0.7 KB a row as JS values, so 25,000
 * rows keep one group near 16 MB: writer, reader and compactor each hold at most one group (and the
 * report one output group besides), far inside a Worker's 128 MB (docs/lake.md has the numbers).
 */
export const ROW_GROUP_ROWS = 25_000;

const CREATED_BY = "zapmeter lake (hyparquet-writer 0.17)";

function columnData(rows: EventRow[]): ColumnSource[] {
  return EVENT_COLUMNS.map((name, i) => ({ name, data: rows.map((r) => r[i] ?? null) }));
}

function parquetWriter(writer: ByteWriter): ParquetWriter {
  return new ParquetWriter({ writer, schema: LAKE_SCHEMA, codec: LAKE_CODEC, compressors, statistics: true, createdBy: CREATED_BY });
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
 * upload), so memory holds one row group however large the file.
 */
export class ParquetStream {
  private readonly pw: ParquetWriter;

  constructor(sink: ByteSink) {
    this.pw = parquetWriter(new SinkWriter(sink));
  }

  /** Writes `rows` as one row group (callers batch up to ROW_GROUP_ROWS). */
  async writeGroup(rows: EventRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.pw.write({ columnData: columnData(rows), rowGroupSize: rows.length });
  }

  /** Writes the footer (with `kvMetadata`, known only at the end); the file is complete when this resolves. */
  async finish(kvMetadata?: KeyValue[]): Promise<void> {
    if (kvMetadata) this.pw.kvMetadata = kvMetadata;
    await this.pw.finish();
  }
}
