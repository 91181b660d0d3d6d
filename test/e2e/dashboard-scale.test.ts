import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DEMO_CLIENTS } from "../../scripts/demo/catalog.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { ROOT, executeLocalSql } from "../../scripts/local-stack.ts";
import { baseUrl, launchChromium, login, metaSignature, signInPage } from "./helpers.ts";

const ARTIFACTS = join(ROOT, "test", "e2e", "artifacts");
const EXTRA = 10_000;
/** Every client in D1 once the extra ones are in: other e2e files may have created some before. */
let TOTAL = 0;
const scaleId = (i: number) => `scale-${String(i).padStart(5, "0")}`;
let browser: Browser;
let page: Page;

const digits = (s: string | null | undefined) => Number((s ?? "").replace(/\D/g, ""));

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  // Let the Overview meet its first viewer (and prime itself) before the extra clients exist.
  await signInPage(page, "admin@example.com");
  await page.locator('[data-testid="live-status"][data-status="live"]').waitFor({ timeout: 15_000 });
  const rows: string[] = [];
  for (let i = 0; i < EXTRA; i++) rows.push(`('${scaleId(i)}', 'Escala ${i}', 'UTC', 'BRL', 1, 1, ${Date.now()})`);
  const sql: string[] = [];
  for (let i = 0; i < rows.length; i += 500) {
    sql.push(`INSERT OR IGNORE INTO clients (id, name, timezone, currency, shards, active, created_at) VALUES ${rows.slice(i, i + 500).join(",\n")};`);
  }
  executeLocalSql(sql.join("\n"), inject("stateDir"));
  const listed = await fetch(`${baseUrl()}/v1/admin/clients`, { headers: { authorization: `Bearer ${await login("admin@example.com")}` } });
  TOTAL = ((await listed.json()) as { clients: unknown[] }).clients.length;
  expect(TOTAL).toBeGreaterThanOrEqual(EXTRA + DEMO_CLIENTS.length);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  // Other e2e files (billing) walk every client: leave the demo world as it was.
  executeLocalSql("DELETE FROM clients WHERE id LIKE 'scale-%';", inject("stateDir"));
}, 120_000);

describe("overview with 10,000 clients", () => {
  it("lists them all, keeps the DOM small, scrolls, searches and still moves live", async () => {
    // A new viewer's snapshot uses a client list at most 2 s old (SNAPSHOT_DIRECTORY_AGE_MS): wait that
    // out so the reload sees the clients inserted just now, which send no events to announce themselves.
    await new Promise((r) => setTimeout(r, 2_500));
    await page.reload();
    const counter = page.getByTestId("client-count");
    // A 3.7 MB snapshot of 10,050 rows: generous on a loaded 2-core CI machine.
    await page
      .waitForFunction((n) => Number(document.querySelector('[data-testid="client-count"]')?.textContent?.replace(/\D/g, "")) === n, TOTAL, { timeout: 90_000 })
      .catch(async (err: unknown) => {
        throw new Error(`overview shows ${await counter.innerText().catch(() => "nothing")} clients, expected ${TOTAL}`, { cause: err });
      });
    expect(digits(await counter.innerText())).toBe(TOTAL);

    const gridHeight = () => page.locator(".grid").evaluate((el) => el.getBoundingClientRect().height);
    // 10,000 rows scroll inside a box that fits the window, the header in sight.
    expect(await gridHeight()).toBeLessThan(page.viewportSize()!.height);
    const rendered = await page.locator("[data-client]").count();
    expect(rendered).toBeGreaterThan(10);
    expect(rendered).toBeLessThan(80);

    await page.locator(".grid").evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.waitForFunction((n) => Array.from(document.querySelectorAll("[data-client]")).some((r) => Number(r.getAttribute("aria-rowindex")) === n + 2), TOTAL);
    expect(await page.locator("[data-client]").count()).toBeLessThan(80);

    await page.getByRole("searchbox").fill(scaleId(9_999));
    await page.locator(`[data-client="${scaleId(9_999)}"]`).waitFor();
    expect(await page.locator("[data-client]").count()).toBe(1);
    // As tall as its rows: the header and the one row, no empty screen-high box under them (a viewer of a client or two).
    expect(await gridHeight()).toBeLessThan(200);
    // A search that matches none: the message, and the table shrinks to its header.
    await page.getByRole("searchbox").fill("matches-no-client");
    await page.getByText("Nenhum cliente encontrado.").waitFor();
    expect(await gridHeight()).toBeLessThan(120);
    await page.getByRole("searchbox").fill("");

    const acme = DEMO_CLIENTS.find((c) => c.id === "acme")!;
    const cell = '[data-client="acme"] [data-cell="today.read"]';
    await page.locator(".grid").evaluate((el) => (el.scrollTop = 0));
    await page.getByRole("button", { name: "Cliente" }).click();
    await page.locator(cell).waitFor();
    const before = digits(await page.locator(cell).innerText());
    const ts = Math.floor(Date.now() / 1000);
    const body = JSON.stringify(webhook([{ phoneNumberId: acme.phoneNumberIds[0]!, statuses: [statusObject({ id: `wamid.scale-${Date.now()}`, status: "read", timestamp: ts })] }]));
    const res = await fetch(`${baseUrl()}/v1/webhooks/whatsapp`, { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": metaSignature(body) }, body });
    expect(res.status).toBe(200);
    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel as string)?.textContent?.replace(/\D/g, "")) === n, [cell, before + 1] as const, { timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, "overview-10k.png") });
  }, 180_000);
});
