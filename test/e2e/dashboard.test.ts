import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page, WebSocketRoute } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CLIENTS } from "../../scripts/demo/catalog.ts";
import { ROOT } from "../../scripts/local-stack.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { baseUrl, launchChromium, login, metaSignature, signInPage } from "./helpers.ts";
import { clearOfMinuteTurn } from "../minute-turn.ts";

const ARTIFACTS = join(ROOT, "test", "e2e", "artifacts");
const acme = DEMO_CLIENTS.find((c) => c.id === "acme")!;
let browser: Browser;
let page: Page;
let messages = 0;
/** acme's "read today" as the client page last showed it. */
let readOnClientPage = -1;

/** Posts a signed WhatsApp webhook with one new message's statuses for acme, occurring now. */
async function ingest(statuses: string[], category = "marketing"): Promise<void> {
  messages += 1;
  const wamid = `wamid.e2e-dashboard-${Date.now()}-${messages}`;
  const ts = Math.floor(Date.now() / 1000);
  const body = JSON.stringify(
    webhook([{ phoneNumberId: acme.phoneNumberIds[0]!, statuses: statuses.map((status) => statusObject({ id: wamid, status, timestamp: ts, category })) }]),
  );
  const res = await fetch(`${baseUrl()}/v1/webhooks/whatsapp`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-hub-signature-256": metaSignature(body) },
    body,
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ accepted: statuses.length });
}

/** A number as the page shows it, in any locale ("1.234" or "1,234"). */
const count = async (selector: string): Promise<number> => Number((await page.locator(selector).first().innerText()).replace(/\D/g, ""));

/** Resolves once the Overview itself holds acme's `status` count at `n` (seen on a socket of our own). */
async function overviewHas(status: "failed", n: number): Promise<void> {
  const token = await login("admin@example.com");
  const res = await fetch(`${baseUrl()}/v1/live/ticket`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{}" });
  const { ticket } = (await res.json()) as { ticket: string };
  const ws = new WebSocket(`${baseUrl().replace(/^http/, "ws")}/v1/live?ticket=${ticket}`);
  await new Promise<void>((resolve) => {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data)) as { clients: { client_id: string; today: Record<string, number> }[] };
      if (m.clients.some((c) => c.client_id === "acme" && c.today[status] === n)) resolve();
    };
  });
  ws.close();
}

async function waitForCount(selector: string, expected: number): Promise<void> {
  await page.waitForFunction(
    ([sel, n]) => Number(document.querySelector(sel as string)?.textContent?.replace(/\D/g, "") ?? -1) === n,
    [selector, expected] as const,
    { timeout: 15_000 },
  );
}

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1440, height: 900 }, locale: "pt-BR" });
});

afterAll(async () => {
  await browser?.close();
});

describe("live dashboard in a real browser", () => {
  it("signs a viewer in and shows only its clients, live", async () => {
    await page.goto(`${baseUrl()}/`);
    await page.waitForURL(/\/login/);
    await expect(page.getByRole("heading", { name: "Entrar no zapmeter" }).isVisible()).resolves.toBe(true);
    await screenshot("login");
    await page.getByLabel("E-mail").fill("viewer@example.com");
    await page.getByLabel("Senha").fill("zapmeter-dev");
    await page.getByRole("button", { name: "Entrar" }).click();
    await page.waitForURL((u) => u.pathname === "/");
    await page.locator('[data-testid="live-status"][data-status="live"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-client="acme"]').waitFor();
    const shown = await page.locator("[data-client]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-client")));
    expect(shown.sort()).toEqual(["acme", "globex"]);
    // The name column cuts a long name short; hovering shows it whole, with the id.
    expect(await page.locator('[data-client="globex"] [role="rowheader"] a').getAttribute("title")).toBe("Globex Telecom (globex)");
  });

  it("moves a count on screen after a signed webhook, without reload", async () => {
    const cell = '[data-client="acme"] [data-cell="today.sent"]';
    const before = await count(cell);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 1));
    // "This minute" is asserted below: the statuses must not land just before a minute turn.
    await clearOfMinuteTurn();
    await ingest(["sent", "delivered"]);
    await waitForCount(cell, before + 1);
    expect(await count('[data-client="acme"] [data-cell="minute.delivered"]')).toBeGreaterThanOrEqual(1);
    // Same document: the change arrived over the WebSocket, not by navigation.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(1);
    await screenshot("overview");
  });

  it("opens a client whose chart and totals move live", async () => {
    await page.locator('[data-client="acme"]').click();
    await page.waitForURL(/\/clients\/acme$/);
    await page.locator('[data-testid="live-status"][data-status="live"]').waitFor({ timeout: 15_000 });
    const sent = '[data-testid="client-today"] [data-status="sent"] dd';
    await page.waitForFunction((sel) => /\d/.test(document.querySelector(sel)?.textContent ?? ""), sent);
    const before = await count(sent);
    const canvas = page.locator('[data-testid="client-chart"] canvas');
    await canvas.waitFor();
    const pixelsBefore = await canvas.evaluate((c: HTMLCanvasElement) => c.toDataURL());
    await ingest(["sent", "delivered", "read"]);
    await waitForCount(sent, before + 1);
    await page.waitForFunction((old) => document.querySelector<HTMLCanvasElement>('[data-testid="client-chart"] canvas')?.toDataURL() !== old, pixelsBefore);
    // With the pointer elsewhere the legend names the latest minute and its counts, not bare labels.
    const legend = await page.locator('[data-testid="client-chart"] .u-legend .u-value').allInnerTexts();
    expect(legend[0]).toMatch(/^\d\d:\d\d$/);
    expect(legend.slice(1).every((v) => /^[\d.]+$/.test(v))).toBe(true);
    expect(legend.slice(1).some((v) => v !== "0")).toBe(true);
    readOnClientPage = await count('[data-testid="client-today"] [data-status="read"] dd');
  });

  it("shows today's counts by category, which follow the live totals", async () => {
    const table = '[data-testid="client-categories"]';
    await page.locator(table).waitFor();
    const cellOf = (category: string, status: string) => `${table} [data-category="${category}"] [data-status="${status}"]`;
    // A category with no events today has no row: it counts as 0.
    const shown = (sel: string) => page.evaluate((s) => Number(document.querySelector(s)?.textContent?.replace(/\D/g, "") || 0), sel);
    const [sent, delivered] = [await shown(cellOf("utility", "sent")), await shown(cellOf("utility", "delivered"))];
    await ingest(["sent", "delivered"], "utility");
    await waitForCount(cellOf("utility", "sent"), sent + 1);
    await waitForCount(cellOf("utility", "delivered"), delivered + 1);
    // Every event is in exactly one category row: the rows add up to today's totals.
    const rowsSum = await page.locator(`${table} [data-status="sent"]`).evaluateAll((cells) => cells.reduce((n, c) => n + Number(c.textContent!.replace(/\D/g, "")), 0));
    expect(rowsSum).toBe(await count('[data-testid="client-today"] [data-status="sent"] dd'));
    expect(await page.locator(`${table} [data-category="utility"] th`).innerText()).toBe("Utilidade");
    await screenshot("client");
  });

  it("exports the detailed report from the client page", async () => {
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Baixar" }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe("acme-report.csv");
    const text = await (await file.createReadStream()).toArray();
    expect(Buffer.concat(text).toString("utf8").split("\n")[0]).toContain("event_id");
  });

  it("exports only the status chosen in the form", async () => {
    const admin = await login("admin@example.com");
    const flushed = await fetch(`${baseUrl()}/v1/admin/flush?client_id=acme`, { method: "POST", headers: { authorization: `Bearer ${admin}` } });
    expect(flushed.status).toBe(200);
    await page.getByLabel("Status").selectOption("read");
    const download = page.waitForEvent("download");
    await page.getByRole("button", { name: "Baixar" }).click();
    const csv = Buffer.concat(await (await (await download).createReadStream()).toArray()).toString("utf8");
    const [header, ...rows] = csv.trim().split("\r\n");
    const statusColumn = header!.split(",").indexOf("status");
    expect(rows.length).toBeGreaterThan(0);
    expect(new Set(rows.map((r) => r.split(",")[statusColumn]))).toEqual(new Set(["read"]));
    // The dashboard asks for spreadsheet times; the API's default is the canonical epoch ms.
    const occurredColumn = header!.split(",").indexOf("occurred_at");
    expect(rows.every((r) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(r.split(",")[occurredColumn]!))).toBe(true);
  });

  it("switches to English and dark, formatting through Intl", async () => {
    await page.getByRole("button", { name: "English" }).click();
    await page.getByRole("button", { name: "Dark theme" }).click();
    await page.getByRole("link", { name: "← Overview" }).click();
    await page.getByRole("heading", { name: "Notifications per client" }).waitFor();
    expect(await page.evaluate(() => [document.documentElement.lang, document.documentElement.dataset.theme])).toEqual(["en", "dark"]);
    // The overview's socket closed while the client page was open: it resyncs from a fresh snapshot.
    await page.locator('[data-testid="live-status"][data-status="live"]').waitFor({ timeout: 15_000 });
    await waitForCount('[data-client="acme"] [data-cell="today.read"]', readOnClientPage);
    await screenshot("overview-en-dark");
  });

  it("works from the keyboard: sort a column, open a client, go back", async () => {
    const todaySent = page.getByTitle("Today · sent");
    // Screen readers read the order on the column header, not on the button inside it.
    const header = page.getByRole("columnheader").filter({ has: todaySent });
    expect(await header.getAttribute("aria-sort")).toBe("descending");
    await todaySent.focus();
    await page.keyboard.press("Enter");
    expect(await header.getAttribute("aria-sort")).toBe("ascending");
    await page.locator('[data-client="acme"] a').focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/clients\/acme$/);
    await page.getByRole("link", { name: "← Overview" }).focus();
    await page.keyboard.press("Enter");
    await page.waitForURL((u) => u.pathname === "/");
  });

  it("tells a viewer who opens another client's page that access is refused, and shows none of its data", async () => {
    await page.goto(`${baseUrl()}/clients/initech`);
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.innerText()).toBe("You don't have access to this client.");
    // Nothing of the page a client has: no totals, no chart, no export, and no badge saying "reconnecting".
    for (const testId of ["client-today", "client-chart", "live-status"]) expect(await page.getByTestId(testId).count()).toBe(0);
    expect(await page.locator("form.report").count()).toBe(0);
    await page.getByRole("link", { name: "← Overview" }).waitFor();
  });

  it("gives finance the billing page, with no detailed report export", async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const p = await context.newPage();
    await signInPage(p, "finance@example.com");
    await p.getByRole("link", { name: "Faturamento" }).click();
    await p.waitForURL(/\/billing$/);
    await p.getByRole("heading", { name: "Faturamento diário" }).waitFor();
    await p.locator("table.lines, .billing .empty").first().waitFor();
    await p.screenshot({ path: join(ARTIFACTS, "billing.png"), fullPage: true });
    // Today, billed early by an admin, is the day so far: the page says so, and totals what it shows.
    await ingest(["delivered"]);
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: acme.timezone }).format(new Date());
    const admin = { authorization: `Bearer ${await login("admin@example.com")}` };
    expect((await fetch(`${baseUrl()}/v1/billing/${today}/run`, { method: "POST", headers: admin })).status).toBe(200);
    const day = (await (await fetch(`${baseUrl()}/v1/billing?date=${today}`, { headers: admin })).json()) as { open_clients: number; lines: { billable_count: number }[] };
    expect(day.open_clients).toBeGreaterThan(0);
    await p.locator('input[type="date"]').fill(today);
    await p.getByRole("button", { name: "Carregar", exact: true }).click();
    await p.getByTestId("billing-provisional").waitFor();
    const totals = await p.getByTestId("billing-total").allInnerTexts();
    expect(totals.map((text) => Number(text.split("\t")[1]!.replace(/\D/g, "")))).toEqual([day.lines.reduce((n, l) => n + l.billable_count, 0)]);
    await p.goto(`${baseUrl()}/clients/acme`);
    await p.locator('[data-testid="live-status"][data-status="live"]').waitFor({ timeout: 15_000 });
    expect(await p.getByRole("heading", { name: "Exportar relatório detalhado" }).count()).toBe(0);
    expect(await p.getByRole("link", { name: "Faturamento" }).count()).toBeGreaterThan(0);
    await context.close();
  });

  it("reconnects after a dropped connection and resyncs from a fresh snapshot", async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const p = await context.newPage();
    const sockets: WebSocketRoute[] = [];
    let gate: Promise<void> | null = null;
    // Fault injection only: every socket still talks to the real server, and the test can cut one.
    await p.routeWebSocket(/\/v1\/live/, async (ws) => {
      sockets.push(ws);
      if (gate) await gate;
      ws.connectToServer();
    });
    await signInPage(p, "admin@example.com");
    const cell = '[data-client="acme"] [data-cell="today.failed"]';
    await p.locator(cell).waitFor();
    const before = Number((await p.locator(cell).innerText()).replace(/\D/g, ""));

    let open!: () => void;
    gate = new Promise((resolve) => (open = resolve));
    await sockets[0]!.close({ code: 4000, reason: "test drops the network" });
    await p.locator('[data-testid="live-status"]:not([data-status="live"])').waitFor();
    // The change happens while the dashboard is cut off; the new connection only gets it from its snapshot.
    await ingest(["failed"]);
    await overviewHas("failed", before + 1);
    open();
    await p.waitForFunction(
      ([sel, n]) => Number(document.querySelector(sel as string)?.textContent?.replace(/\D/g, "") ?? -1) === n,
      [cell, before + 1] as const,
      { timeout: 15_000 },
    );
    await p.locator('[data-testid="live-status"][data-status="live"]').waitFor();
    expect(sockets.length).toBe(2);
    await context.close();
  });
});
