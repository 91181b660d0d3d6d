/**
 * Parquet (bytes per event, flush time), the 1 M-row CSV export and a busy day's compaction, each
 * next to DuckDB doing the same job on the same rows: writing them as ZSTD Parquet, exporting
 * Parquet to CSV, and merging the small files into one.
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { benchClientId } from "./events.ts";
import { drive, driveInWorker } from "./load.ts";
import { DEV_APP_SECRET } from "./ingest.ts";
import { DEV_INGEST_KEY } from "../scripts/demo/catalog.ts";
import { pullLocalR2 } from "../scripts/local-r2.ts";
import { rssMb, rssSampler, type BenchStack } from "./stack.ts";
import { round, since } from "./stats.ts";
import type { LakeCompactResponse } from "../schema/api.ts";
import { utcDate } from "../schema/time.ts";

interface FillOptions {
  concurrency?: number;
  /** Events per request; `rows` is a multiple of it. */
  batchSize?: number;
  /** Drives from this thread: a fill of one request would spend more starting a worker than sending it. */
  inThread?: boolean;
}

/** Bridged batches (of 1,000 events unless told) into each of `clients`, `rows` each (same generator as the ingest load). */
export async function fill(stack: BenchStack, clients: number[], run: string, t0: number, rows: number, o: FillOptions = {}): Promise<void> {
  const batchSize = o.batchSize ?? 1_000;
  const r = await (o.inThread ? drive : driveInWorker)({
    kind: "bridged", baseUrl: stack.url, ingestKey: DEV_INGEST_KEY, appSecret: DEV_APP_SECRET, run, t0,
    clients, batchSize, concurrency: o.concurrency ?? 2, durationMs: 3_600_000, maxRequests: Math.ceil(rows / batchSize) * clients.length,
  });
  if (r.accepted !== rows * clients.length) throw new Error(`filling ${clients.map(benchClientId).join(", ")}: ${r.accepted} of ${rows * clients.length} accepted (${JSON.stringify(r.failures)})`);
}

/** Writes one benchmark client's pending detail rows to the lake now (`POST /v1/admin/flush`). */
export async function flushClient(stack: BenchStack, client: number): Promise<{ files: string[]; ms: number }> {
  const t = performance.now();
  const res = await fetch(`${stack.url}/v1/admin/flush?client_id=${benchClientId(client)}`, { method: "POST", headers: { authorization: `Bearer ${stack.token}` } });
  if (res.status !== 200) throw new Error(`flush: ${res.status} ${await res.text()}`);
  const { files } = (await res.json()) as { files: string[] };
  return { files, ms: since(t) };
}

/** Parallel flushes while draining. */
const DRAIN_FANOUT = 8;

/**
 * Flushes what a workload left in its clients' outboxes and returns the seconds that took: the next
 * workload is then measured on its own instead of alongside the previous one's lake backlog (up to a
 * minute of a bridged run's rows, flushed by alarms that would fire during the next run).
 */
export async function drainLake(stack: BenchStack, clients: number[]): Promise<number> {
  const t = performance.now();
  const queue = [...clients];
  await Promise.all(
    Array.from({ length: DRAIN_FANOUT }, async () => {
      for (let c = queue.shift(); c !== undefined; c = queue.shift()) await flushClient(stack, c);
    }),
  );
  return round(since(t) / 1000, 3);
}

async function scalar(db: DuckDBConnection, sql: string): Promise<number> {
  const rows = (await db.runAndReadAll(sql)).getRows();
  return Number(rows[0]![0]);
}

export interface ParquetFigures {
  rows: number;
  files: number;
  flush_s: number;
  parquet_bytes_per_event: number;
  duckdb_parquet_bytes_per_event: number;
}

/**
 * `rows` (< one flush batch, so no alarm flushes first) into a fresh client, one admin flush, then
 * the files copied out of the local R2 bucket; DuckDB rewrites the very same rows as ZSTD Parquet.
 */
export async function benchParquet(stack: BenchStack, client: number, run: string, t0: number, rows: number): Promise<ParquetFigures> {
  await fill(stack, [client], run, t0, rows);
  const { files, ms } = await flushClient(stack, client);
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-bench-parquet-"));
  try {
    const clientPrefix = `${files[0]!.split("/").slice(0, 3).join("/")}/`;
    const paths = (await pullLocalR2(clientPrefix, dir, stack.stateDir)).map((key) => join(dir, key));
    if (paths.length !== files.length) throw new Error(`the flush wrote ${files.length} files, the local bucket holds ${paths.length}`);
    const bytes = paths.reduce((sum, p) => sum + statSync(p).size, 0);
    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const ours = `read_parquet([${paths.map((p) => `'${p}'`).join(", ")}])`;
    const counted = await scalar(db, `SELECT count(*) FROM ${ours}`);
    if (counted !== rows) throw new Error(`the lake holds ${counted} rows, expected ${rows}`);
    const peer = join(dir, "duckdb.parquet");
    await db.run(`COPY (SELECT * FROM ${ours}) TO '${peer}' (FORMAT parquet, COMPRESSION zstd)`);
    db.closeSync();
    return {
      rows,
      files: files.length,
      flush_s: round(ms / 1000, 3),
      parquet_bytes_per_event: round(bytes / rows, 2),
      duckdb_parquet_bytes_per_event: round(statSync(peer).size / rows, 2),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ExportFigures {
  rows: number;
  fill_s: number;
  flush_s: number;
  export_s: number;
  export_mb: number;
  /** Peak resident memory of the workerd process while it streamed the export. */
  export_peak_rss_mb: number;
  rss_before_mb: number;
  duckdb_export_s: number;
}

/**
 * `rows` into one client, flushed to the lake (alarms plus a final admin flush), then the CSV
 * report of all of them; DuckDB exports the same rows from one ZSTD Parquet file to CSV.
 */
export async function benchExport(stack: BenchStack, client: number, run: string, t0: number, rows: number): Promise<ExportFigures> {
  const tFill = performance.now();
  await fill(stack, [client], run, t0, rows);
  const fillMs = since(tFill);
  const { ms: flushMs } = await flushClient(stack, client);
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-bench-export-"));
  try {
    const from = new Date(t0 - 3_600_000).toISOString();
    const to = new Date(t0 + rows * 5 + 3_600_000).toISOString();
    const csv = join(dir, "ours.csv");
    const rssBefore = rssMb(stack.workerdPid);
    const sampler = rssSampler(stack.workerdPid);
    const t = performance.now();
    const res = await fetch(`${stack.url}/v1/clients/${benchClientId(client)}/report?from=${from}&to=${to}&format=csv`, {
      headers: { authorization: `Bearer ${stack.token}` },
    });
    if (res.status !== 200 || !res.body) throw new Error(`export: ${res.status} ${await res.text()}`);
    let lines = 0;
    const file = createWriteStream(csv);
    const reader = res.body.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      // indexOf, not a loop over every byte: that took ~0.8 s of this process's CPU per 1 M rows,
      // in the export's time and on the core workerd's other threads share.
      for (let at = r.value.indexOf(10); at !== -1; at = r.value.indexOf(10, at + 1)) lines++;
      if (!file.write(r.value)) await once(file, "drain");
    }
    await new Promise<void>((done) => file.end(done));
    const exportMs = since(t);
    const peak = sampler.stop();
    if (lines - 1 !== rows) throw new Error(`the export has ${lines - 1} rows, expected ${rows}`);

    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const parquet = join(dir, "peer.parquet");
    await db.run(`COPY (SELECT * FROM read_csv('${csv}')) TO '${parquet}' (FORMAT parquet, COMPRESSION zstd)`);
    const tPeer = performance.now();
    await db.run(`COPY (SELECT * FROM read_parquet('${parquet}')) TO '${join(dir, "peer.csv")}' (FORMAT csv, HEADER)`);
    const peerMs = since(tPeer);
    db.closeSync();
    return {
      rows,
      fill_s: round(fillMs / 1000, 2),
      flush_s: round(flushMs / 1000, 2),
      export_s: round(exportMs / 1000, 3),
      export_mb: round(statSync(csv).size / 1e6, 1),
      export_peak_rss_mb: round(peak, 1),
      rss_before_mb: round(rssBefore, 1),
      duckdb_export_s: round(peerMs / 1000, 3),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface CompactionFigures {
  files: number;
  rows: number;
  /** Writing the small files: one bridged batch and one admin flush each. */
  fill_s: number;
  compaction_s: number;
  duckdb_compaction_s: number;
}

/**
 * A busy client's day of small files (`files` flushes of `rowsPerFile` rows, on t0's UTC day) in a
 * fresh client, compacted through `POST /v1/admin/lake/compact`; DuckDB merges the very same small
 * files, copied out of the local R2 bucket first, into one ZSTD Parquet file.
 */
export async function benchCompaction(stack: BenchStack, client: number, run: string, t0: number, files: number, rowsPerFile: number): Promise<CompactionFigures> {
  const tFill = performance.now();
  for (let f = 0; f < files; f++) {
    // A run of its own per file: each fill numbers its events from 0.
    await fill(stack, [client], `${run}-${f}`, t0 + f * rowsPerFile * 5, rowsPerFile, { concurrency: 1, batchSize: rowsPerFile, inThread: true });
    await flushClient(stack, client);
  }
  const fillMs = since(tFill);
  const date = utcDate(t0);
  const prefix = `lake/notifications/client_id=${benchClientId(client)}/date=${date}/`;
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-bench-compaction-"));
  try {
    // An alarm's flush may take a batch before the admin one: what counts is one file per batch.
    const small = (await pullLocalR2(prefix, join(dir, "small"), stack.stateDir)).map((key) => join(dir, "small", key));
    if (small.length !== files) throw new Error(`${files} flushes left ${small.length} files`);

    const t = performance.now();
    const res = await fetch(`${stack.url}/v1/admin/lake/compact?client_id=${benchClientId(client)}&date=${date}`, { method: "POST", headers: { authorization: `Bearer ${stack.token}` } });
    if (res.status !== 200) throw new Error(`compaction: ${res.status} ${await res.text()}`);
    const compactionMs = since(t);
    const done = (await res.json()) as LakeCompactResponse;
    const rows = files * rowsPerFile;
    if (done.files.length !== 1 || done.replaced !== files || done.rows !== rows) throw new Error(`compaction answered ${JSON.stringify({ ...done, files: done.files.length })}, expected 1 file of ${rows} rows replacing ${files}`);

    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const compacted = await pullLocalR2(prefix, join(dir, "compacted"), stack.stateDir);
    if (compacted.length !== 1) throw new Error(`the partition holds ${compacted.length} files after compaction`);
    const counted = await scalar(db, `SELECT count(*) FROM read_parquet('${join(dir, "compacted", compacted[0]!)}')`);
    if (counted !== rows) throw new Error(`the compacted file holds ${counted} rows, expected ${rows}`);
    const tPeer = performance.now();
    await db.run(`COPY (SELECT * FROM read_parquet([${small.map((p) => `'${p}'`).join(", ")}])) TO '${join(dir, "peer.parquet")}' (FORMAT parquet, COMPRESSION zstd)`);
    const peerMs = since(tPeer);
    db.closeSync();
    return { files, rows, fill_s: round(fillMs / 1000, 1), compaction_s: round(compactionMs / 1000, 2), duckdb_compaction_s: round(peerMs / 1000, 3) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
