import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getPlatformProxy } from "wrangler";
import type { EventRow } from "../../workers/lake/columns.ts";
import { partKey } from "../../workers/lake/layout.ts";
import { ParquetStream, ROW_GROUP_ROWS } from "../../workers/lake/parquet-writer.ts";
import { R2Upload } from "../../workers/lake/r2-upload.ts";
import { compactPartition } from "../../workers/lake/compaction.ts";
import { reportRows, reportStream } from "../../workers/lake/report.ts";

/**
 * The report's memory does not grow with its size: 1.2 M rows written by the lake's own writer into
 * local R2 (workerd, through wrangler's platform proxy), streamed back as CSV and as Parquet, with the
 * heap sampled along the way.
 */
const CLIENT = "scale-client";
const DATE = "2026-11-18";
const T0 = Date.UTC(2026, 10, 18);
// One compacted day file (read by row-group ranges) and one flush-sized file (read whole).
const FILE_ROWS = [1_000_000, 200_000];
const TOTAL = FILE_ROWS.reduce((a, b) => a + b, 0);
const STATUSES = ["sent", "delivered", "read", "failed"];

/** Deterministic but high-entropy ids, so the files compress like real ones (~12 bytes a row). */
const hash = (n: number) => (Math.imul(n ^ 0x9e3779b9, 2654435761) >>> 0).toString(16).padStart(8, "0");

function row(i: number): EventRow {
  const m = Math.floor(i / 3);
  const status = STATUSES[i % 4]!;
  const wamid = `wamid.HBgM${hash(m)}${hash(m + 7)}${hash(m + 13)}`;
  // Spread over the day in order, as flushes and compaction leave it (sorted by occurred_at).
  const at = T0 + Math.floor((i * 86_000_000) / TOTAL);
  return [`${wamid}:${status}`, wamid, CLIENT, status, at, at + 700, m % 5 === 4 ? null : "marketing", m % 5 === 4 ? null : true,
    m % 5 === 4 ? null : "regular", `5511${String(900000000 + (Math.imul(m, 7919) >>> 0) % 99999999)}`, "BR", "106540352242922", `tpl_${m % 12}`,
    status === "failed" ? 131026 : null, status === "failed" ? "Message undeliverable." : null, "whatsapp"];
}

let dispose: () => Promise<void> = async () => {};
let bucket: R2Bucket;
const configDir = mkdtempSync(join(tmpdir(), "zapmeter-lake-"));

beforeAll(async () => {
  // Only an R2 binding: the project's wrangler.toml would also declare Durable Objects this test has no use for.
  const config = join(configDir, "wrangler.json");
  writeFileSync(config, JSON.stringify({ name: "lake-scale", compatibility_date: "2026-11-01", r2_buckets: [{ binding: "LAKE", bucket_name: "lake-scale" }] }));
  const proxy = await getPlatformProxy<{ LAKE: R2Bucket }>({ configPath: config, persist: false });
  dispose = proxy.dispose;
  bucket = proxy.env.LAKE;
  let first = 0;
  for (const [f, rows] of FILE_ROWS.entries()) {
    const upload = new R2Upload(bucket, partKey(CLIENT, DATE, f + 1, f + 1));
    const file = new ParquetStream((bytes) => upload.write(bytes));
    for (let g = 0; g < rows; g += ROW_GROUP_ROWS) {
      await file.append(Array.from({ length: Math.min(ROW_GROUP_ROWS, rows - g) }, (_, k) => row(first + g + k)));
    }
    await file.finish();
    await upload.close();
    first += rows;
  }
}, 300_000);

afterAll(async () => {
  await dispose();
  rmSync(configDir, { recursive: true, force: true });
});

// V8 collects lazily, so heapUsed alone counts garbage; what a Worker must fit is what stays live.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/**
 * Drains a stream as a client would, counting bytes; after every chunk it collects garbage and
 * samples the heap, so `peakLiveMb` is the most the report kept alive at once.
 */
async function drain(stream: ReadableStream<Uint8Array>, onChunk: (c: Uint8Array) => void = () => {}): Promise<{ bytes: number; peakLiveMb: number }> {
  gc();
  const base = process.memoryUsage().heapUsed;
  let peak = 0;
  let bytes = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    onChunk(value);
    gc();
    peak = Math.max(peak, process.memoryUsage().heapUsed - base);
  }
  return { bytes, peakLiveMb: peak / 2 ** 20 };
}

describe("report over a ≥ 1 M-row range", () => {
  it("streams every row as CSV with the heap bounded far below the output size", async () => {
    let lines = 0;
    const { bytes, peakLiveMb } = await drain(await reportStream(bucket, CLIENT, { from: T0, to: T0 + 86_400_000 }, "csv", "epoch_ms"), (c) => {
      for (const b of c) if (b === 10) lines++;
    });
    expect(lines).toBe(TOTAL + 1);
    expect(bytes / 2 ** 20).toBeGreaterThan(200);
    console.info(`lake report: ${TOTAL} rows, CSV ${(bytes / 2 ** 20).toFixed(0)} MiB, peak live heap ${peakLiveMb.toFixed(0)} MiB`);
    // Held at once: a decoded row group and its CSV text, never the report.
    expect(peakLiveMb).toBeLessThan(64);
  }, 300_000);

  it("streams a status-filtered Parquet file and skips row groups outside a narrow range", async () => {
    const gets: number[] = [];
    const counting = new Proxy(bucket, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (prop !== "get") return typeof v === "function" ? v.bind(target) : v;
        return async (key: string, opts?: R2GetOptions) => {
          const obj = await target.get(key, opts);
          if (obj) gets.push((opts?.range as { length?: number } | undefined)?.length ?? obj.size);
          return obj;
        };
      },
    });
    // One hour of a 24-hour day: only the row groups that overlap it are fetched.
    const hour = { from: T0 + 3_600_000 * 5, to: T0 + 3_600_000 * 6, statuses: new Set(["failed"]) };
    const chunks: Uint8Array[] = [];
    const { peakLiveMb } = await drain(await reportStream(counting, CLIENT, hour, "parquet", "epoch_ms"), (c) => chunks.push(c));
    const file = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of chunks) file.set(c, at), (at += c.byteLength);
    const { parquetMetadata } = await import("hyparquet");
    const expected = Array.from({ length: TOTAL }, (_, i) => i).filter((i) => {
      const r = row(i);
      return (r[4] as number) >= hour.from && (r[4] as number) < hour.to && r[3] === "failed";
    }).length;
    expect(Number(parquetMetadata(file.buffer).num_rows)).toBe(expected);
    const fetched = gets.reduce((n, b) => n + b, 0);
    const stored = (await bucket.list({ prefix: "lake/" })).objects.reduce((n, o) => n + o.size, 0);
    console.info(`lake report (1 h of 24, failed only): ${expected} rows; fetched ${fetched} of ${stored} stored bytes; peak live heap ${peakLiveMb.toFixed(0)} MiB`);
    // The big file is read by ranges: only its footer and the groups overlapping the hour; the small one whole.
    expect(fetched).toBeLessThan(stored / 3);
    expect(peakLiveMb).toBeLessThan(64);
  }, 300_000);
});

// Last in the file: it compacts the day's two files into one.
describe("a compaction during a report of that day", () => {
  it("replacing the large file between two of its row groups leaves the report every row once, in order", async () => {
    let ranged = 0;
    const racing = new Proxy(bucket, {
      get(target, prop) {
        const v = Reflect.get(target, prop) as unknown;
        if (prop !== "get") return typeof v === "function" ? v.bind(target) : v;
        return async (key: string, opts?: R2GetOptions) => {
          // The large file's footer, then its first two row groups; before the third, the night's compaction.
          if (opts?.range && key === partKey(CLIENT, DATE, 1, 1) && ++ranged === 4) await compactPartition(target, CLIENT, DATE);
          return target.get(key, opts);
        };
      },
    });
    let i = 0;
    let misplaced = 0;
    for await (const rows of reportRows(racing, CLIENT, { from: T0, to: T0 + 86_400_000 })) for (const r of rows) if (r[0] !== row(i++)[0]) misplaced++;
    expect(ranged).toBe(4);
    expect((await bucket.list({ prefix: "lake/" })).objects.map((o) => o.key)).toEqual([partKey(CLIENT, DATE, 1, 2)]);
    expect({ rows: i, misplaced }).toEqual({ rows: TOTAL, misplaced: 0 });
  }, 300_000);
});
