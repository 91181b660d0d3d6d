import { DuckDBInstance } from "@duckdb/node-api";
import { tableFromIPC } from "apache-arrow";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readParquet } from "parquet-wasm/node";
import { describe, expect, inject, it, onTestFinished } from "vitest";
import { pullLocalR2 } from "../../scripts/local-r2.ts";
import { DEV_INGEST_KEY } from "../../scripts/demo/catalog.ts";
import { baseUrl, login } from "./helpers.ts";

/**
 * Interop: events ingested over HTTP into a real `wrangler dev`, flushed by the admin route, and the
 * lake files it wrote (copied out of the local R2 bucket, as an R2 sync would) read by DuckDB with hive partitioning. DuckDB
 * must count exactly what the counters API counts. The same files are read by a second, independent
 * Parquet implementation, arrow-rs (the Rust reader, through parquet-wasm), for the engines built on
 * Arrow (pandas, Polars, DataFusion): DuckDB reading a file says little about other readers.
 */
const T0 = Date.UTC(2026, 10, 18, 23, 50, 0);
const STATUSES = ["accepted", "sent", "delivered", "read", "failed"] as const;

async function api(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${baseUrl()}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });
}

/** Column → Arrow type of a Parquet file as arrow-rs reads it, and its rows. */
function readWithArrow(path: string): { types: Record<string, string>; rows: Record<string, unknown>[] } {
  const table = tableFromIPC(readParquet(new Uint8Array(readFileSync(path))).intoIPCStream());
  return {
    types: Object.fromEntries(table.schema.fields.map((f) => [f.name, `${f.type}${f.nullable ? "?" : ""}`])),
    rows: table.toArray().map((r) => r.toJSON() as Record<string, unknown>),
  };
}

describe("DuckDB and arrow-rs read the lake", () => {
  it("read_parquet(..., hive_partitioning = true) counts what the counters API counts", async () => {
    const token = await login("admin@example.com");
    const clientId = `duck-${Date.now().toString(36)}`;
    expect((await api("/v1/admin/clients", token, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: clientId, name: "DuckDB interop" }) })).status).toBe(201);

    // 600 events over 20 minutes across UTC midnight (two partitions), sent in 3 requests, one twice.
    const events = Array.from({ length: 600 }, (_, i) => {
      const status = STATUSES[i % STATUSES.length]!;
      return {
        event_id: `${clientId}-m${Math.floor(i / 5)}:${status}`, message_id: `${clientId}-m${Math.floor(i / 5)}`, client_id: clientId, status,
        occurred_at: T0 + i * 2_000, recipient: `5511${String(987000000 + i)}`, category: i % 2 ? "marketing" : "utility",
        billable: status === "delivered" ? true : null, error_code: status === "failed" ? 131000 + (i % 7) : null, template: `tpl_${i % 3}`,
      };
    });
    const ingest = (batch: unknown[]) =>
      fetch(`${baseUrl()}/v1/ingest/events`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${DEV_INGEST_KEY}` }, body: JSON.stringify(batch) });
    for (const batch of [events.slice(0, 200), events.slice(200, 400), events.slice(200, 400), events.slice(400)]) expect((await ingest(batch)).status).toBe(200);

    const flushed = await api(`/v1/admin/flush?client_id=${clientId}`, token, { method: "POST" });
    expect(flushed.status).toBe(200);
    const { files } = (await flushed.json()) as { files: string[] };
    expect(files.map((k) => k.split("/")[3])).toEqual(["date=2026-11-18", "date=2026-11-19"]);

    const dir = mkdtempSync(join(tmpdir(), "zapmeter-duck-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    expect(await pullLocalR2(`lake/notifications/client_id=${clientId}/`, dir, inject("stateDir"))).toEqual(files);

    const db = await (await DuckDBInstance.create(":memory:")).connect();
    const lake = `read_parquet('${dir}/lake/notifications/*/*/*.parquet', hive_partitioning = true)`;
    const types = Object.fromEntries(
      (await db.runAndReadAll(`DESCRIBE SELECT * FROM ${lake}`)).getRowObjectsJson().map((r) => [r.column_name, r.column_type]),
    );
    expect(types).toMatchObject({ occurred_at: "TIMESTAMP WITH TIME ZONE", received_at: "TIMESTAMP WITH TIME ZONE", billable: "BOOLEAN", error_code: "INTEGER", status: "VARCHAR", client_id: "VARCHAR", date: "DATE" });

    const perMinute = (await db.runAndReadAll(
      `SELECT epoch_ms(date_trunc('minute', occurred_at))::BIGINT AS minute, status, count(*)::INTEGER AS n FROM ${lake} WHERE client_id = '${clientId}' GROUP BY ALL ORDER BY ALL`,
    )).getRowObjectsJson() as { minute: string; status: string; n: number }[];
    const fromDuck = new Map<string, number>();
    for (const r of perMinute) fromDuck.set(`${r.minute}/${r.status}`, r.n);

    const counters = await api(`/v1/clients/${clientId}/counters?from=2026-11-18T00:00:00Z&to=2026-11-20T00:00:00Z`, token);
    const { minutes } = (await counters.json()) as { minutes: Record<string, number>[] };
    const fromApi = new Map<string, number>();
    for (const m of minutes) for (const s of STATUSES) if (m[s]! > 0) fromApi.set(`${m.minute}/${s}`, m[s]!);
    expect(fromDuck).toEqual(fromApi);

    const [totals] = (await db.runAndReadAll(
      `SELECT count(*)::INTEGER AS n, count(DISTINCT event_id)::INTEGER AS ids, sum(error_code)::BIGINT AS errors, count(*) FILTER (billable)::INTEGER AS billable, count(DISTINCT date)::INTEGER AS dates FROM ${lake}`,
    )).getRowObjectsJson();
    expect(totals).toEqual({
      n: 600,
      ids: 600,
      errors: String(events.reduce((s, e) => s + (e.error_code ?? 0), 0)),
      // Each message's read came without pricing and took its delivered's (docs/billing.md).
      billable: events.filter((e) => e.billable || e.status === "read").length,
      dates: 2,
    });
    expect([...fromApi.values()].reduce((a, b) => a + b, 0)).toBe(600);

    // The exported Parquet report is a real Parquet file for DuckDB too.
    const report = await api(`/v1/clients/${clientId}/report?from=2026-11-18T00:00:00Z&to=2026-11-20T00:00:00Z&format=parquet&status=failed`, token);
    writeFileSync(join(dir, "report.parquet"), new Uint8Array(await report.arrayBuffer()));
    const [failed] = (await db.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM read_parquet('${dir}/report.parquet')`)).getRowObjectsJson();
    expect(failed).toEqual({ n: 120 });

    const byArrow = [...files.map((key) => join(dir, key)), join(dir, "report.parquet")].map(readWithArrow);
    for (const { types } of byArrow) {
      expect(types).toMatchObject({
        event_id: "Utf8", client_id: "Dictionary<Int32, Utf8>", status: "Utf8", recipient: "Utf8", source: "Utf8",
        occurred_at: "Timestamp<MILLISECOND, UTC>", received_at: "Timestamp<MILLISECOND, UTC>",
        category: "Utf8?", billable: "Bool?", error_code: "Int32?", country: "Utf8?",
      });
    }
    const lakeRows = byArrow.slice(0, files.length).flatMap((f) => f.rows);
    expect(lakeRows).toHaveLength(600);
    const failure = events.find((e) => e.status === "failed")!;
    expect(lakeRows.find((r) => r.event_id === failure.event_id)).toMatchObject({
      occurred_at: failure.occurred_at, status: "failed", error_code: failure.error_code, recipient: failure.recipient, country: "BR", source: "kafka",
    });
    expect(byArrow.at(-1)!.rows.map((r) => r.status)).toEqual(Array(120).fill("failed"));
  });
});
