import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { baseUrl, login } from "./helpers.ts";

const DAY = "2026-11-19";
const api = (path: string, token: string, init: RequestInit = {}) =>
  fetch(`${baseUrl()}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } });

describe("daily billing on a real wrangler dev", () => {
  it("the Cron Trigger bills a São Paulo client's day; finance downloads CSV and Parquet through signed links", async () => {
    const admin = await login("admin@example.com");
    const finance = await login("finance@example.com");
    const client = `e2e-billing-${Date.now().toString(36)}`;
    const json = { "content-type": "application/json" };
    expect((await api("/v1/admin/clients", admin, { method: "POST", headers: json, body: JSON.stringify({ id: client, name: "E2E, Billing", timezone: "America/Sao_Paulo" }) })).status).toBe(201);
    const card = { client_id: client, category: "marketing", country: "BR", unit_price_micros: 62_500, currency: "BRL" };
    expect((await api("/v1/admin/rate-cards", admin, { method: "PUT", headers: json, body: JSON.stringify(card) })).status).toBe(200);
    const event = (id: string, status: string, at: string) => ({
      event_id: `${id}:${status}`, message_id: id, client_id: client, status, occurred_at: at,
      recipient: "5511987654321", category: "marketing", billable: true, pricing_type: "regular",
    });
    const events = [
      event("m1", "delivered", `${DAY}T12:00:00-03:00`),
      event("m1", "read", `${DAY}T12:01:00-03:00`),
      event("m2", "delivered", `${DAY}T23:30:00-03:00`),
    ];
    const ingest = await fetch(`${baseUrl()}/v1/ingest/events`, { method: "POST", headers: { ...json, authorization: "Bearer dev-ingest-key" }, body: JSON.stringify(events) });
    expect(await ingest.json()).toMatchObject({ accepted: 3, rejected: [] });

    // São Paulo's 19th ends at 03:00Z on the 20th; with the 2 h grace it is due at 05:00Z.
    const time = Date.parse("2026-11-20T05:10:00Z");
    const cron = await fetch(`${baseUrl()}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/10 * * * *")}&time=${time}`);
    expect(cron.status).toBe(200);

    const billing = await (await api(`/v1/billing?date=${DAY}&client_id=${client}`, finance)).json();
    expect(billing).toMatchObject({
      date: DAY,
      lines: [{ client_id: client, client_name: "E2E, Billing", category: "marketing", country: "BR", billable_count: 2, unit_price_micros: 62_500, amount_micros: 125_000, currency: "BRL" }],
    });
    expect(billing.revision).toBeGreaterThanOrEqual(1);

    const link = async (format: string) => {
      const res = await api(`/v1/billing/${DAY}/download?format=${format}`, finance);
      expect(res.status).toBe(200);
      return ((await res.json()) as { url: string }).url;
    };
    const csvUrl = await link("csv");
    const csv = await fetch(csvUrl);
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-disposition")).toBe(`attachment; filename="billing-${DAY}-r${billing.revision}.csv"`);
    expect(await csv.text()).toContain(`${DAY},${billing.revision},${client},"E2E, Billing",marketing,BR,2,62500,125000,BRL\r\n`);
    const tampered = csvUrl.replace("billing.csv", "billing.parquet");
    expect((await fetch(tampered)).status).toBe(403);

    const dir = mkdtempSync(join(tmpdir(), "zapmeter-billing-"));
    try {
      const file = join(dir, "billing.parquet");
      writeFileSync(file, new Uint8Array(await (await fetch(await link("parquet"))).arrayBuffer()));
      const db = await (await DuckDBInstance.create(":memory:")).connect();
      const rows = (
        await db.runAndReadAll(`SELECT client_name, billable_count, amount_micros, currency FROM read_parquet('${file}') WHERE client_id = '${client}'`)
      ).getRowObjectsJson();
      expect(rows).toEqual([{ client_name: "E2E, Billing", billable_count: "2", amount_micros: "125000", currency: "BRL" }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
