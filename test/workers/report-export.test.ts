import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { admin, authed, withMethods, call, createClient, ingestKey, postEvents, signIn } from "./helpers.ts";
import { parsePart } from "../../workers/lake/layout.ts";
import { reportRows } from "../../workers/lake/report.ts";
import { countingGets, DAY1, detailEvent, flush, parseCsv, readParquet, report } from "./lake-fixtures.ts";

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
    const at = (offset: number) => new Date(DAY1 + offset).toISOString();
    const ids = async (query: Record<string, string>) => parseCsv(await (await report(id, query)).text()).slice(1).map((r) => r[column("event_id")]).sort();
    // Bounds on events' instants: each UTC day's file's first and last rows (its row group statistics'
    // min and max), a 2 ms range across midnight (DAY1 + 2 s), a status that is a group's least.
    const cases: [from: number, to: number, status?: string][] = [
      [1_000, 9_000, "failed,read"],
      [1_000, 9_000],
      [0, 1_000],
      [1_999, 2_001],
      [0, 12_000, "delivered"],
    ];
    for (const [from, to, status] of cases) {
      const want = events.filter((e) => (e.occurred_at as number) >= DAY1 + from && (e.occurred_at as number) < DAY1 + to && (!status || status.split(",").includes(e.status as string)));
      expect(want.length).toBeGreaterThan(0);
      expect(await ids({ from: at(from), to: at(to), ...(status ? { status } : {}) }), `[${from}, ${to}) ${status ?? ""}`).toEqual(want.map((e) => e.event_id).sort());
    }
    const repeated = await call(`/v1/clients/${id}/report?from=${at(1_000)}&to=${at(9_000)}&status=failed&status=read`, {
      headers: { authorization: `Bearer ${await signIn("admin")}` },
    });
    // Recipients are personal data: no shared cache may keep a copy.
    expect(repeated.headers.get("cache-control")).toBe("no-store");
    expect(parseCsv(await repeated.text()).slice(1).map((r) => r[column("event_id")]).sort()).toEqual(await ids({ from: at(1_000), to: at(9_000), status: "failed,read" }));
  });

  it("takes a range in any zone's offset as the instants it names, across the turn of a month's partitions, `to` exclusive", async () => {
    const { id } = await createClient();
    const instants = ["2026-11-30T18:14:59.999Z", "2026-11-30T18:15:00Z", "2026-11-30T23:59:59.999Z", "2026-12-01T00:00:00Z", "2026-12-01T18:15:00Z"];
    const events = instants.map((t, i) => detailEvent(id, i, { occurred_at: t }));
    await postEvents(events, await ingestKey());
    await flush(id);
    const token = await admin();
    // As typed into a URL, `+` unescaped (a query string reads it as a space).
    const ask = async (from: string, to: string, extra = "") => {
      const res = await call(`/v1/clients/${id}/report?from=${from}&to=${to}${extra}`, authed(token));
      expect(res.status, `${from} ${to}`).toBe(200);
      return { res, rows: parseCsv(await res.text()).slice(1) };
    };
    const times = (rows: string[][]) => rows.map((r) => r[column("occurred_at")]!).sort();
    const ms = (...of: number[]) => of.map((i) => String(Date.parse(instants[i]!))).sort();
    // Kathmandu's (+05:45) 1st of December: 18:15Z on the 30th to 18:15Z on the 1st, two UTC partitions.
    const kathmandu = await ask("2026-12-01T00:00+05:45", "2026-12-02T00:00+05:45", "&times=iso");
    expect(kathmandu.rows.map((r) => r[column("occurred_at")]).sort()).toEqual(["2026-11-30T18:15:00.000Z", "2026-11-30T23:59:59.999Z", "2026-12-01T00:00:00.000Z"]);
    expect(kathmandu.res.headers.get("content-disposition")).toBe(`attachment; filename="zapmeter-${id}-20261130T181500Z-20261201T181500Z.csv"`);
    // The last millisecond of November in Pago Pago's (−11) and Kiritimati's (+14) words, each alone.
    expect(times((await ask("2026-11-30T12:59:59.999-11:00", "2026-11-30T13:00:00-11:00")).rows)).toEqual(ms(2));
    expect(times((await ask("2026-12-01T13:59:59.999+1400", "2026-12-01T14:00+14")).rows)).toEqual(ms(2));
    // New York's evening of the 30th (EST, −05:00) to Kolkata's midnight (+05:30), `to` exclusive.
    expect(times((await ask("2026-11-30T13:15:00-05:00", "2026-12-01T23:45+05:30")).rows)).toEqual(ms(1, 2, 3));
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
      lake.bucket = withMethods(lake.bucket, { put: () => Promise.reject(new Error("injected R2 outage")) });
    });
    const res = await report(id, RANGE);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("flush_failed");
  });

  it("cuts the download short, and logs which client's report broke, when a lake file turns out unreadable mid-stream", async () => {
    const { id } = await clientWithEvents();
    // A file that is not Parquet, in a partition the report reads after the first one.
    await env.LAKE.put(`lake/notifications/client_id=${id}/date=2026-11-19/part-900-900.parquet`, "not a Parquet file");
    const logged = vi.spyOn(console, "error");
    const res = await report(id, RANGE);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    const line = logged.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).find((l) => l.event === "report_stream_failed");
    expect(line).toMatchObject({ level: "error", client_id: id });
  });

  it("reads a day's files ahead, five GETs at once, and gives their rows in seq order", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const events = Array.from({ length: 16 }, (_, i) => detailEvent(id, -(i + 10)));
    // Eight flushes of two events each: eight files on DAY1's date.
    for (let f = 0; f < 8; f++) {
      await postEvents(events.slice(f * 2, f * 2 + 2), key);
      await flush(id);
    }
    const files = (await env.LAKE.list({ prefix: `lake/notifications/client_id=${id}/` })).objects.map((o) => parsePart(o.key, o.size)!);
    expect(files).toHaveLength(8);
    const inSeqOrder: unknown[] = [];
    for (const { key: file } of files.sort((a, b) => a.first - b.first)) inSeqOrder.push(...(await readParquet(await (await env.LAKE.get(file))!.arrayBuffer())).rows.map((r) => r.event_id));
    const { bucket, most } = countingGets(env.LAKE);
    const ids: unknown[] = [];
    for await (const rows of reportRows(bucket, id, { from: DAY1 - 60_000, to: DAY1 })) ids.push(...rows.map((r) => r[column("event_id")]));
    // Five at once (READ_AHEAD_FILES): of an invocation's six calls waiting for an answer, one is left free.
    expect(most()).toBe(5);
    expect(ids).toEqual(inSeqOrder);
    expect([...ids].sort()).toEqual(events.map((e) => e.event_id).sort());
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
    const { id, events } = await clientWithEvents();
    // Another client whose id starts with this one's, with events at the same instants, named in the query too.
    const other = await createClient({ id: `${id}-2` });
    await postEvents(Array.from({ length: 12 }, (_, i) => detailEvent(other.id, i)), await ingestKey());
    await flush(other.id);
    const own = await report(id, { ...RANGE, client_id: other.id }, await signIn("viewer", [id]));
    expect(own.status).toBe(200);
    const rows = parseCsv(await own.text()).slice(1);
    expect(rows.map((r) => r[column("event_id")]).sort()).toEqual(events.map((e) => e.event_id).sort());
    expect(new Set(rows.map((r) => r[column("client_id")]))).toEqual(new Set([id]));
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
    // 366 days is the longest export, and 366 local days over a clock going back (2 h at most, Troll's); a millisecond more is refused.
    const longest = { from: "2025-11-19T00:00:00Z", to: "2026-11-20T02:00:00Z" };
    expect((await report(id, longest)).status).toBe(200);
    const over = await report(id, { ...longest, to: "2026-11-20T02:00:00.001Z" });
    expect(over.status).toBe(400);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("range_too_large");
    expect((await report("no-such-client", RANGE)).status).toBe(404);
  });

  it("records each export in the audit log, without personal data", async () => {
    const { id } = await clientWithEvents();
    await report(id, { ...RANGE, format: "parquet", status: "sent" });
    const row = await env.DB.prepare("SELECT action, target, details FROM audit_log WHERE target = ? AND action = 'report.export'").bind(id).first<{ details: string }>();
    expect(JSON.parse(row!.details)).toEqual({ from: Date.parse(RANGE.from), to: Date.parse(RANGE.to), format: "parquet", status: ["sent"] });
  });
});
