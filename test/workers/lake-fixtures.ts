import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { decompressors } from "../../workers/lake/codec.ts";
import { admin, authed, call, unique, withMethods } from "./helpers.ts";

export const DAY1 = Date.UTC(2026, 10, 18, 23, 59, 58); // late on 2026-11-18 UTC
const STATUSES = ["sent", "delivered", "read", "failed"] as const;

/**
 * A bridged event with every kind of column filled or null, `i` spreading it over ~2 s steps
 * (so a batch crosses the UTC midnight after DAY1) and over the statuses.
 */
export function detailEvent(clientId: string, i: number, over: Record<string, unknown> = {}): Record<string, unknown> {
  const messageId = `wamid.${unique("m")}`;
  const status = STATUSES[((i % STATUSES.length) + STATUSES.length) % STATUSES.length]!;
  return {
    event_id: `${messageId}:${status}`,
    message_id: messageId,
    client_id: clientId,
    status,
    occurred_at: DAY1 + i * 1_000,
    recipient: `55119${String(87654321 + i).padStart(8, "0")}`,
    category: i % 3 === 0 ? null : "marketing",
    billable: i % 2 === 0 ? true : null,
    pricing_type: i % 2 === 0 ? "regular" : null,
    phone_number_id: "106540352242922",
    template: i % 5 === 0 ? 'promo, "black friday"\nline 2' : `tpl_${Math.abs(i % 4)}`,
    error_code: status === "failed" ? 131026 : null,
    error_title: status === "failed" ? "Message undeliverable" : null,
    ...over,
  };
}

export async function flush(clientId?: string, token?: string): Promise<Response> {
  return call(`/v1/admin/flush${clientId ? `?client_id=${encodeURIComponent(clientId)}` : ""}`, authed(token ?? (await admin()), { method: "POST" }));
}

export async function report(clientId: string, query: Record<string, string>, token?: string): Promise<Response> {
  return call(`/v1/clients/${clientId}/report?${new URLSearchParams(query)}`, authed(token ?? (await admin())));
}

/** Replaces the lake bucket of `clientId`'s shard 0 (a failing or gated one) until the object is evicted. */
export function setBucket(clientId: string, bucket: R2Bucket): Promise<void> {
  return runInDurableObject(counterOf(env, clientId), (instance) => {
    (instance as unknown as { lake: { bucket: R2Bucket } }).lake.bucket = bucket;
  });
}

/** The keys in `clientId`'s lake partition of `day`, sorted. */
export async function partitionKeys(clientId: string, day: string): Promise<string[]> {
  return (await env.LAKE.list({ prefix: `lake/notifications/client_id=${clientId}/date=${day}/` })).objects.map((o) => o.key).sort();
}

/** The event ids of `clientId`'s Parquet report over `range`, sorted. */
export async function reportEventIds(clientId: string, range: Record<string, string>): Promise<string[]> {
  const { rows } = await readParquet(await (await report(clientId, { ...range, format: "parquet" })).arrayBuffer());
  return rows.map((r) => r.event_id as string).sort();
}

/** A strict RFC 4180 reader (quoted fields, doubled quotes, CRLF records), to check what we write. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let row: string[] = [];
  let field = "";
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), (i += 2);
      else if (ch === '"') (quoted = false), i++;
      else (field += ch), i++;
    } else if (ch === '"') (quoted = true), i++;
    else if (ch === ",") row.push(field), (field = ""), i++;
    else if (ch === "\r" && text[i + 1] === "\n") row.push(field), records.push(row), (row = []), (field = ""), (i += 2);
    else if (ch === "\n") throw new Error(`bare LF in an unquoted field at ${i}`);
    else (field += ch), i++;
  }
  if (field !== "" || row.length > 0) throw new Error("last record is not CRLF-terminated");
  return records;
}

/** A Parquet file's schema, row group sizes and rows (times as epoch ms). */
export async function readParquet(
  bytes: ArrayBuffer,
): Promise<{ schema: ReturnType<typeof parquetMetadata>["schema"]; rowGroups: number[]; rows: Record<string, unknown>[] }> {
  const metadata = parquetMetadata(bytes);
  const rows = await parquetReadObjects({
    file: bytes,
    metadata,
    compressors: decompressors,
    parsers: { timestampFromMilliseconds: (ms: bigint) => Number(ms) },
  });
  return { schema: metadata.schema, rowGroups: metadata.row_groups.map((g) => Number(g.num_rows)), rows };
}

/** `bucket` counting its GETs waiting for an answer; `most()` is the most at once it saw. */
export function countingGets(bucket: R2Bucket): { bucket: R2Bucket; most: () => number } {
  let waiting = 0;
  let most = 0;
  const get = async (key: string, options?: R2GetOptions) => {
    most = Math.max(most, ++waiting);
    try {
      return await bucket.get(key, options);
    } finally {
      waiting -= 1;
    }
  };
  return { bucket: withMethods(bucket, { get: get as R2Bucket["get"] }), most: () => most };
}
