import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import type { EventRow } from "../../workers/lake/columns.ts";
import { parsePart, partKey } from "../../workers/lake/layout.ts";
import { encodeParquet, ParquetStream, ROW_GROUP_ROWS } from "../../workers/lake/parquet-writer.ts";
import { openPart } from "../../workers/lake/reader.ts";
import { unique } from "./helpers.ts";

/** High-entropy rows, so compressed pages run well past 64 KB (the size older workerd zstd failed at). */
function rows(n: number): EventRow[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `wamid.${crypto.randomUUID()}`;
    return [`${id}:sent`, id, "c", "sent", 1763700000000 + i, 1763700000000 + i + 5, null, i % 2 === 0, null, String(5511900000000 + i), "BR", null, null, i % 3 === 0 ? 131026 : null, null, "kafka"];
  });
}

/** Writes `data` as one lake file to R2, reads it back, checks every row came back, and returns the file's reader. */
async function roundTrip(data: EventRow[]) {
  const bytes = encodeParquet(data);
  const key = partKey(unique("w"), "2026-11-18", 1, 1);
  await env.LAKE.put(key, bytes);
  const reader = await openPart(env.LAKE, parsePart(key, bytes.byteLength)!);
  const back: EventRow[] = [];
  for await (const g of reader.rows()) back.push(...g);
  expect(back).toEqual(data);
  return { reader, bytes: bytes.byteLength };
}

describe("lake Parquet inside workerd", () => {
  it("ZSTD files of several row groups round-trip through R2 unchanged", async () => {
    const { reader, bytes } = await roundTrip(rows(ROW_GROUP_ROWS * 2 + 10));
    expect(bytes).toBeGreaterThan(1 << 20);
    expect(reader.metadata.row_groups.map((g) => Number(g.num_rows))).toEqual([ROW_GROUP_ROWS, ROW_GROUP_ROWS, 10]);
    expect(reader.metadata.row_groups[0]!.columns.every((c) => c.meta_data!.codec === "ZSTD")).toBe(true);
  });

  it("encodes each column the same way in every file, whatever its rows: ids, recipients and times PLAIN, repeated values in a dictionary, booleans PLAIN", async () => {
    // fastparquet returns None for text when the files it reads together mix PLAIN and dictionary
    // pages, and cannot read RLE booleans with nulls: a one-row flush and a large one must agree.
    const billable = EVENT_COLUMNS.indexOf("billable");
    const encodingsOf = async (data: EventRow[]) =>
      (await roundTrip(data)).reader.metadata.row_groups[0]!.columns.map((c) => c.meta_data!.encodings.filter((e) => e !== "PLAIN").join() || "PLAIN");
    const many = rows(40).map((r, i) => r.with(billable, i % 3 === 0 ? null : r[billable]!));
    const plain = new Set(["event_id", "message_id", "recipient", "occurred_at", "received_at", "billable"]);
    const expected = EVENT_COLUMNS.map((c) => (plain.has(c) ? "PLAIN" : "RLE_DICTIONARY"));
    expect(await encodingsOf(many)).toEqual(expected);
    expect(await encodingsOf(rows(1))).toEqual(expected);
  });

  it("a file streamed in batches that straddle row groups comes out in full groups of ROW_GROUP_ROWS, rows unchanged", async () => {
    const data = rows(ROW_GROUP_ROWS + 10);
    const pieces: Uint8Array[] = [];
    const file = new ParquetStream((bytes) => void pieces.push(bytes));
    // A compaction appends each source's groups, a report each filtered group: any sizes.
    for (let i = 0; i < data.length; i += 7_000) await file.append(data.slice(i, i + 7_000));
    await file.finish();
    const key = partKey(unique("w"), "2026-11-18", 1, 1);
    await env.LAKE.put(key, await new Blob(pieces).arrayBuffer());
    const reader = await openPart(env.LAKE, parsePart(key, (await env.LAKE.head(key))!.size)!);
    // A bigger group would hold more rows in memory than the writer, reader and compactor are sized for.
    expect(reader.metadata.row_groups.map((g) => Number(g.num_rows))).toEqual([ROW_GROUP_ROWS, 10]);
    const back: EventRow[] = [];
    for await (const g of reader.rows()) back.push(...g);
    expect(back).toEqual(data);
  });

  it("a sink that fails fails the append whose rows filled the group, so an upload error stops the writer at once", async () => {
    const file = new ParquetStream(() => Promise.reject(new Error("upload refused")));
    await expect(file.append(rows(ROW_GROUP_ROWS))).rejects.toThrow("upload refused");
  });

  it("strings round-trip byte for byte: non-ASCII text, nulls, repeats after a column proved unique", async () => {
    const data: EventRow[] = Array.from({ length: 1_000 }, (_, i) => {
      const id = `wamid.${i}`;
      // 300 distinct templates first (past the writer's reuse limit), then one repeated value.
      const template = i < 300 ? `modelo_${i}_confirmação` : "promoção 🎉";
      return [`${id}:read`, id, "c", i % 2 ? "read" : "sent", 1763700000000 + i, 1763700000005 + i, "marketing", true, "regular", String(5511900000000 + i), i % 7 ? "BR" : "PT", null, template, i % 5 ? null : 131026, i % 5 ? null : "número inválido ✗ — 受信者", "kafka"];
    });
    await roundTrip(data);
  });
});

describe("a streamed Parquet file (compaction output, the Parquet report)", () => {
  /** Bytes of the distinct buffers the writer's row-group metadata keeps reachable until its footer. */
  function retainedBytes(stream: ParquetStream): number {
    type Stats = { min_value?: unknown; max_value?: unknown };
    const pw = (stream as unknown as { pw: { row_groups: { columns: { meta_data?: { statistics?: Stats } }[] }[] } }).pw;
    const buffers = new Set<ArrayBufferLike>();
    for (const group of pw.row_groups) {
      for (const { meta_data } of group.columns) {
        for (const v of [meta_data?.statistics?.min_value, meta_data?.statistics?.max_value]) if (v instanceof Uint8Array) buffers.add(v.buffer);
      }
    }
    return [...buffers].reduce((n, b) => n + b.byteLength, 0);
  }

  it("keeps no written row group's string buffers until its footer: what it holds does not grow with the groups", async () => {
    const stream = new ParquetStream(() => {});
    const retained: number[] = [];
    for (let g = 0; g < 3; g++) {
      await stream.append(rows(ROW_GROUP_ROWS));
      retained.push(retainedBytes(stream));
    }
    await stream.finish();
    // Before: ~11 MiB more after each group, every group's column buffers held by its statistics.
    expect(Math.max(...retained)).toBeLessThan(64 * 1024);
  }, 120_000);
});
