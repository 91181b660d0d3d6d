/** The human summary of a run: each figure next to its peer and the ratio (ours / peer). */
import { HOT_SHARDS } from "./hot-client.ts";

type Results = Record<string, unknown>;

const fmt = (v: unknown): string => (typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 3 }) : v == null ? "—" : String(v));

/** Rows of the summary table: [figure, ours, peer, ratio, goal]. */
function summaryRows(r: Results): string[][] {
  const g = (k: string) => r[k] as number | null;
  const ratios = (r.ratios ?? {}) as Record<string, number | null>;
  return [
    ["Ingest, bridged (1,000-event batches, 100 clients), events/s", fmt(g("ingest_bridged_events_per_s")), `PostgreSQL ${fmt(g("postgres_peer_events_per_s"))}`, fmt(ratios.bridged_vs_postgres), "≥ 50,000"],
    ["Ingest, webhooks (signed, 1–10 statuses, 1,000 clients), events/s", fmt(g("ingest_webhook_events_per_s")), `PostgreSQL ${fmt(g("postgres_peer_webhook_events_per_s"))}`, fmt(ratios.webhook_vs_postgres), "≥ 3,500"],
    ["Ingest, webhooks of 1 status each (1,000 clients), events/s", fmt(g("ingest_webhook_single_events_per_s")), `PostgreSQL ${fmt(g("postgres_peer_webhook_single_events_per_s"))}`, fmt(ratios.webhook_single_vs_postgres), ""],
    ["SQLite rows written per event (bridged / webhook / 1-status webhook)", `${fmt(g("rows_written_per_event"))} / ${fmt(g("webhook_rows_written_per_event"))} / ${fmt(g("webhook_single_rows_written_per_event"))}`, "", "", "≤ 1.1"],
    ["Durable Object calls per event (bridged / webhook / 1-status webhook)", `${fmt(g("do_calls_per_event"))} / ${fmt(g("webhook_do_calls_per_event"))} / ${fmt(g("webhook_single_do_calls_per_event"))}`, "", "", ""],
    ["Ingest 2xx → WebSocket update under the throughput load, p50 / p99 ms", `${fmt(g("ws_latency_p50_ms"))} / ${fmt(g("ws_latency_p99_ms"))}`, "", "", "p99 ≤ 250"],
    ["Ingest 2xx → WebSocket update at 3,500 events/s, p50 / p99 ms", `${fmt(g("ws_latency_at_seed_rate_p50_ms"))} / ${fmt(g("ws_latency_at_seed_rate_p99_ms"))}`, "", "", "p99 ≤ 250"],
    ["Ingest 2xx → the client's row on the overview at 3,500 events/s, p50 / p99 ms", `${fmt(g("overview_latency_at_seed_rate_p50_ms"))} / ${fmt(g("overview_latency_at_seed_rate_p99_ms"))}`, "", "", "p99 ≤ 250"],
    [
      `That row under webhooks to 100 clients, with ${fmt(g("overview_crowd_viewers"))} of their viewers open (${fmt(g("overview_crowd_messages_per_s"))} messages/s to them), p50 / p99 ms`,
      `${fmt(g("overview_crowd_latency_p50_ms"))} / ${fmt(g("overview_crowd_latency_p99_ms"))} (workerd ${fmt(g("overview_crowd_workerd_busy"))} busy)`,
      `1 viewer ${fmt(g("overview_one_viewer_latency_p50_ms"))} / ${fmt(g("overview_one_viewer_latency_p99_ms"))} (${fmt(g("overview_one_viewer_workerd_busy"))})`,
      fmt(ratios.overview_crowd_vs_one_viewer_p99),
      "p99 ≤ 250",
    ],
    [
      `Hot client: webhooks at one client of ${HOT_SHARDS} shards (calls / rows written per event), events/s`,
      `${fmt(g("hot_client_sharded_events_per_s"))} (${fmt(g("hot_client_sharded_do_calls_per_event"))} / ${fmt(g("hot_client_sharded_rows_written_per_event"))})`,
      `1 shard ${fmt(g("hot_client_one_shard_events_per_s"))} (${fmt(g("hot_client_one_shard_do_calls_per_event"))} / ${fmt(g("hot_client_one_shard_rows_written_per_event"))})`,
      fmt(ratios.hot_client_sharded_vs_one_shard),
      "",
    ],
    [`Ingest 2xx → WebSocket update of that ${HOT_SHARDS}-shard client under its load, p50 / p99 ms`, `${fmt(g("ws_latency_sharded_p50_ms"))} / ${fmt(g("ws_latency_sharded_p99_ms"))}`, "", "", "p99 ≤ 250"],
    ["Parquet bytes per event", fmt(g("parquet_bytes_per_event")), `DuckDB ZSTD ${fmt(g("duckdb_parquet_bytes_per_event"))}`, fmt(ratios.parquet_bytes_vs_duckdb), ""],
    ["Parquet flush of 24,000 rows, s", fmt(g("parquet_flush_s")), "", "", ""],
    [`CSV export of 1 M rows, s (measured on ${fmt(g("export_rows_measured"))} rows)`, fmt(g("export_1m_rows_s")), `DuckDB ${fmt(g("duckdb_export_1m_rows_s"))}`, fmt(ratios.export_time_vs_duckdb), ""],
    ["Export peak RSS of workerd, MB (before the export)", `${fmt(g("export_peak_rss_mb"))} (${fmt(g("export_rss_before_mb"))})`, "", "", ""],
    [
      `Compaction of a day's ${fmt(g("compaction_files"))} small files (${fmt(g("compaction_rows"))} rows) into one, s`,
      fmt(g("compaction_s")),
      `DuckDB ${fmt(g("duckdb_compaction_s"))}`,
      fmt(ratios.compaction_time_vs_duckdb),
      "",
    ],
    [`Billing run, 10,000 clients, s (measured on ${fmt(g("billing_clients_measured"))} clients)`, fmt(g("billing_10k_clients_s")), "", "", ""],
    ["Cloudflare cost per million messages, USD (100 M/day)", fmt(g("cost_usd_per_million_messages")), "", "", ""],
  ];
}

/** The summary as a Markdown table (for the README and docs/capacity.md). */
function summaryMarkdown(r: Results): string {
  const head = ["Figure", "zapmeter", "Peer (same run, same events)", "Ratio", "Goal"];
  return [head, head.map(() => "---"), ...summaryRows(r)].map((row) => `| ${row.join(" | ")} |`).join("\n");
}

export function printSummary(r: Results): void {
  console.log(`\nzapmeter bench${r.quick ? " (--quick)" : ""} — ${r.started_at}, ${(r.machine as { cpus: number }).cpus} cores, commit ${r.commit}\n`);
  console.log(summaryMarkdown(r));
  console.log("\nAbsolute times are context only on a shared 2-core machine; compare the ratios.");
}
