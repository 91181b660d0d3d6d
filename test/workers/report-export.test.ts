import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { call, createClient, ingestKey, postEvents, signIn } from "./helpers.ts";
import { DAY1, detailEvent, flush, parseCsv, readParquet, report } from "./lake-fixtures.ts";

const RANGE = { from: "2026-11-18T00:00:00Z", to: "2026-11-20T00:00:00Z" };

/** A client with 12 flushed events, one per second from DAY1 (across UTC midnight). */
async function clientWithEvents(): Promise<{ id: string; events: Record<string, unknown>[] }> {
  const { id } = await createClient();
  const events = Array.from({ length: 12 }, (_, i) => detailEvent(id, i));
  await postEvents(events, await ingestKey());
  await flush(id);
  return { id, events };
}

const column = (name: string) => EVENT_COLUMNS.indexOf(name as (typeof EVENT_COLUMNS)[number]);

describe("GET /v1/clients/:id/report", () => {
  it("filters rows exactly by [from, to) and status, across partitions", async () => {
    const { id, events } = await clientWithEvents();
    const from = DAY1 + 1_000; // i = 1
    const to = DAY1 + 9_000; // i = 9 excluded
    const res = await report(id, { from: new Date(from).toISOString(), to: new Date(to).toISOString(), status: "failed,read" });
    const [, ...rows] = parseCsv(await res.text());
    const want = events.filter((e, i) => i >= 1 && i < 9 && (e.status === "failed" || e.status === "read")).map((e) => e.event_id);
    expect(rows.map((r) => r[column("event_id")]).sort()).toEqual([...want].sort());
    expect(want.length).toBe(4);
    const repeated = await call(
      `/v1/clients/${id}/report?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&status=failed&status=read`,
      { headers: { authorization: `Bearer ${await signIn("admin")}` } },
    );
    expect(parseCsv(await repeated.text()).slice(1).map((r) => r[column("event_id")]).sort()).toEqual([...want].sort());
  });

  it("holds every event accepted before it was asked for, flushed by the alarm or not", async () => {
    const { id } = await createClient();
    await postEvents([detailEvent(id, 0), detailEvent(id, 1), detailEvent(id, 2)], await ingestKey());
    const ids = async () => parseCsv(await (await report(id, RANGE)).text()).slice(1).map((r) => r[column("event_id")]);
    expect(await ids()).toHaveLength(3);
    // A late event for a day already in the lake, and a report that finds nothing waiting: no row twice.
    await postEvents([detailEvent(id, 3)], await ingestKey());
    const all = await ids();
    expect(all).toHaveLength(4);
    expect(new Set(all).size).toBe(4);
    expect(await ids()).toEqual(all);
  });

  it("answers 503 (retry), not a report missing rows, when the client's waiting events cannot be written", async () => {
    const { id } = await createClient();
    await postEvents([detailEvent(id, 0)], await ingestKey());
    await runInDurableObject(counterOf(env, id), (instance) => {
      const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
      const real = lake.bucket;
      lake.bucket = new Proxy(real, {
        get: (target, prop) => (prop === "put" ? () => Promise.reject(new Error("injected R2 outage")) : Reflect.get(target, prop, target)),
      });
    });
    const res = await report(id, RANGE);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("flush_failed");
  });

  it("quotes fields as RFC 4180 says and writes UTF-8", async () => {
    const { id } = await createClient();
    await postEvents([detailEvent(id, 0, { template: 'promo, "black friday"\nline 2' }), detailEvent(id, 1, { template: "promoção ☀" })], await ingestKey());
    await flush(id);
    const bytes = new Uint8Array(await (await report(id, RANGE)).arrayBuffer());
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    expect(text).toContain(',"promo, ""black friday""\nline 2",');
    expect(text).toContain(",promoção ☀,");
    expect(text.startsWith(`${EVENT_COLUMNS.join(",")}\r\n`)).toBe(true);
  });

  it("an empty range gives a header-only CSV and a valid empty Parquet file", async () => {
    const { id } = await clientWithEvents();
    const empty = { from: "2026-10-01T00:00:00Z", to: "2026-10-02T00:00:00Z" };
    expect(await (await report(id, empty)).text()).toBe(`${EVENT_COLUMNS.join(",")}\r\n`);
    const { rows, schema } = await readParquet(await (await report(id, { ...empty, format: "parquet" })).arrayBuffer());
    expect(rows).toEqual([]);
    expect(schema.slice(1).map((s) => s.name)).toEqual(EVENT_COLUMNS);
  });

  it("is scoped: viewers see their own clients only, finance none, strangers sign in first", async () => {
    const { id } = await clientWithEvents();
    const other = await createClient();
    expect((await report(id, RANGE, await signIn("viewer", [id]))).status).toBe(200);
    const denied = await report(id, RANGE, await signIn("viewer", [other.id]));
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect((await report(id, RANGE, await signIn("finance"))).status).toBe(403);
    expect((await call(`/v1/clients/${id}/report?${new URLSearchParams(RANGE)}`)).status).toBe(401);
  });

  it("refuses bad queries with 400 and unknown clients with 404", async () => {
    const { id } = await createClient();
    const bad = [
      { from: "2026-11-20T00:00:00Z", to: "2026-11-19T00:00:00Z" },
      { ...RANGE, format: "xlsx" },
      { ...RANGE, times: "local" },
      { ...RANGE, status: "sent,bogus" },
      { from: "2025-01-01T00:00:00Z", to: "2026-11-20T00:00:00Z" },
      { from: "yesterday", to: "today" },
    ];
    for (const q of bad) {
      const res = await report(id, q);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/validation_failed|range_too_large/);
    }
    expect((await report("no-such-client", RANGE)).status).toBe(404);
  });

  it("records each export in the audit log, without personal data", async () => {
    const { id } = await clientWithEvents();
    await report(id, { ...RANGE, format: "parquet", status: "sent" });
    const row = await env.DB.prepare("SELECT action, target, details FROM audit_log WHERE target = ? AND action = 'report.export'").bind(id).first<{ details: string }>();
    expect(JSON.parse(row!.details)).toEqual({ from: Date.parse(RANGE.from), to: Date.parse(RANGE.to), format: "parquet", status: ["sent"] });
  });
});
