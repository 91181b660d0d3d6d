import { describe, expect, it } from "vitest";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import type { EventRow } from "../../workers/lake/columns.ts";
import { ParquetStream } from "../../workers/lake/parquet-writer.ts";
import { CSV_HEADER, csvLines } from "../../workers/lake/report-csv.ts";
import { reportRowless } from "../../pages/src/report-rows.ts";

const OCCURRED = EVENT_COLUMNS.indexOf("occurred_at");
const RECEIVED = EVENT_COLUMNS.indexOf("received_at");

function row(over: Partial<Record<(typeof EVENT_COLUMNS)[number], EventRow[number]>> = {}): EventRow {
  const base: Record<string, EventRow[number]> = {
    event_id: "e",
    message_id: "m",
    client_id: "c",
    status: "sent",
    occurred_at: Date.UTC(2026, 10, 29, 12, 0, 0),
    received_at: Date.UTC(2026, 10, 29, 12, 0, 1),
    category: null,
    billable: null,
    pricing_type: null,
    recipient: "5511987654321",
    country: null,
    phone_number_id: null,
    template: null,
    error_code: null,
    error_title: null,
    source: "kafka",
    ...over,
  };
  return EVENT_COLUMNS.map((c) => base[c]!);
}

/** The fields of CSV lines without quoted commas or line breaks. */
const fieldsOf = (csv: string) => csv.split("\r\n").slice(0, -1).map((l) => l.split(","));

describe("CSV report lines", () => {
  it("write times as the canonical epoch ms by default", () => {
    const fields = fieldsOf(csvLines([row({ received_at: 946_684_800_001 })], "epoch_ms"))[0]!;
    expect([fields[OCCURRED], fields[RECEIVED]]).toEqual([String(Date.UTC(2026, 10, 29, 12, 0, 0)), "946684800001"]);
  });

  it("write every time as toISOString does when asked for ISO, in and out of order, across second, minute, day and year turns", () => {
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    const times = [
      946_684_800_000, 4_102_444_799_999, Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2026, 10, 29, 12, 0, 59, 9),
      Date.UTC(2026, 10, 29, 12, 1, 0, 90), Date.UTC(2026, 10, 29, 12, 0, 5, 900), Date.UTC(2028, 1, 29, 0, 0, 0, 1),
      // The millisecond's zero padding changes at 10 and 100.
      ...[9, 10, 99, 100].map((ms) => Date.UTC(2026, 10, 29, 12, 2, 3, ms)),
    ];
    for (let i = 0; i < 2_000; i++) times.push(946_684_800_000 + (next() % 3_155_760_000) * 1_000 + (next() % 1_000));
    for (let i = 0; i < 500; i++) times.push(Date.UTC(2026, 10, 29, 12) + next() % 180_000);
    const rows = times.map((t, i) => row({ occurred_at: t, received_at: times[times.length - 1 - i]! }));
    const fields = fieldsOf(csvLines(rows, "iso"));
    expect(fields.map((f) => f[OCCURRED])).toEqual(times.map((t) => new Date(t).toISOString()));
    expect(fields.map((f) => f[RECEIVED])).toEqual([...times].reverse().map((t) => new Date(t).toISOString()));
  });

  it("quote fields with quotes, commas or line breaks, and leave nulls empty", () => {
    const csv = csvLines([row({ event_id: 'say "hi"', message_id: "a,b", template: "line\nbreak", error_title: "cr\r", billable: false, error_code: 131_000 })], "iso");
    expect(csv).toBe(
      `"say ""hi""","a,b",c,sent,2026-11-29T12:00:00.000Z,2026-11-29T12:00:01.000Z,,false,,5511987654321,,,"line\nbreak",131000,"cr\r",kafka\r\n`,
    );
  });

  it("write an empty text as \"\" and a null as nothing, in both forms, as the Parquet keeps them apart", () => {
    for (const times of ["epoch_ms", "iso"] as const) {
      const [empty, missing] = [row({ template: "", error_title: "" }), row()].map((r) => csvLines([r], times).split(",")) as [string[], string[]];
      const at = (name: (typeof EVENT_COLUMNS)[number]) => EVENT_COLUMNS.indexOf(name);
      expect([empty[at("template")], empty[at("error_title")]]).toEqual(['""', '""']);
      expect([missing[at("template")], missing[at("error_title")]]).toEqual(["", ""]);
    }
  });

  it("defuse text a spreadsheet would run as a formula in the ISO (spreadsheet) form only", () => {
    // A leading tab or CR also starts a formula in some spreadsheets (OWASP's CSV injection list).
    const hostile = row({ event_id: "-e", message_id: "@m", template: "=SUM(A1)", error_title: "+1 retry", recipient: "\t=1+1", pricing_type: "\r=1+1" });
    const at = (c: (typeof EVENT_COLUMNS)[number]) => EVENT_COLUMNS.indexOf(c);
    const columns = [at("event_id"), at("message_id"), at("template"), at("error_title"), at("recipient"), at("pricing_type")];
    const [spreadsheet] = fieldsOf(csvLines([hostile], "iso"));
    expect(columns.map((i) => spreadsheet![i])).toEqual(["'-e", "'@m", "'=SUM(A1)", "'+1 retry", "'\t=1+1", '"\'\r=1+1"']);
    const [machine] = fieldsOf(csvLines([hostile], "epoch_ms"));
    expect(columns.map((i) => machine![i])).toEqual(["-e", "@m", "=SUM(A1)", "+1 retry", "\t=1+1", '"\r=1+1"']);
  });
});

describe("the dashboard's check for a report without rows", () => {
  /** A report file as the report route writes it: ParquetStream's row groups and footer, end to end. */
  async function parquetReport(rows: EventRow[]): Promise<Blob> {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    const out = new ParquetStream((bytes) => void parts.push(bytes));
    await out.append(rows);
    await out.finish([{ key: "zapmeter.report", value: "x".repeat(70_000) }]);
    return new Blob(parts);
  }

  it("calls a CSV of the header row alone empty, and one with a row not", async () => {
    expect(await reportRowless(new Blob([CSV_HEADER]), "csv")).toBe(true);
    expect(await reportRowless(new Blob([CSV_HEADER, csvLines([row()], "iso")]), "csv")).toBe(false);
  });

  it("reads a Parquet report's row count from its footer alone (a footer larger than 64 KB included)", async () => {
    expect(await reportRowless(await parquetReport([]), "parquet")).toBe(true);
    expect(await reportRowless(await parquetReport([row()]), "parquet")).toBe(false);
  });

  it("does not call a file empty that is not Parquet", async () => {
    const magic = [...new TextEncoder().encode("PAR1")];
    /** `body`, then a footer length of `length` and the closing magic. */
    const file = (body: number[], length: number) => new Blob([new Uint8Array([...body, length & 0xff, length >> 8, 0, 0, ...magic])]);
    expect(await reportRowless(new Blob([]), "parquet")).toBe(false);
    expect(await reportRowless(new Blob(["PAR1"]), "parquet")).toBe(false);
    expect(await reportRowless(file(new Array(20).fill(0x41), 60_000), "parquet")).toBe(false);
    // A footer length that fits, over bytes that are not a footer.
    expect(await reportRowless(file([...magic, ...new Array(40).fill(0xff)], 40), "parquet")).toBe(false);
  });
});
