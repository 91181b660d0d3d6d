import { createRequire } from "node:module";
import type Axe from "axe-core";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO_CLIENTS } from "../../scripts/demo/catalog.ts";
import { baseUrl, launchChromium, login, signInPage, waitForLive } from "./helpers.ts";

// The axe-core audit of 2026-12-01 (docs/live.md) as a test: every page and state a user
// reaches, in both themes, checked by axe against WCAG 2.2 A/AA, and reflow at 320 CSS px.

const AXE_SCRIPT = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
const THEMES = ["light", "dark"] as const;
/** São Paulo clients, so the billing day of their events is the one asked for below. */
const SEEDED = ["acme", "globex", "initech"];
const billingDay = new Intl.DateTimeFormat("en-CA", { timeZone: DEMO_CLIENTS.find((c) => c.id === "acme")!.timezone }).format(new Date());

let browser: Browser;

/** Today's traffic for a few clients in every status and category, and today billed: the pages have numbers, lines and a month. */
async function seed(): Promise<void> {
  const now = Date.now();
  const statuses = ["accepted", "sent", "delivered", "read", "failed"];
  const categories = ["marketing", "utility", "authentication"];
  const events = SEEDED.flatMap((client, c) =>
    categories.flatMap((category, k) =>
      statuses.map((status) => ({
        event_id: `a11y-${now}-${c}-${k}:${status}`, message_id: `a11y-${now}-${c}-${k}`, client_id: client, status, category,
        occurred_at: now - 60_000, recipient: "5511987654321", billable: true, pricing_type: "regular",
      })),
    ),
  );
  const ingest = await fetch(`${baseUrl()}/v1/ingest/events`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer dev-ingest-key" }, body: JSON.stringify(events) });
  expect(await ingest.json()).toMatchObject({ accepted: events.length, rejected: [] });
  const run = await fetch(`${baseUrl()}/v1/billing/${billingDay}/run`, { method: "POST", headers: { authorization: `Bearer ${await login("admin@example.com")}` } });
  expect(run.status).toBe(200);
}

/** axe's WCAG A/AA violations on the page as it is, one line each: what to fix, how bad, and where. */
async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE_SCRIPT });
  const { violations } = await page.evaluate(
    (tags) => (window as unknown as { axe: typeof Axe }).axe.run(document, { runOnly: { type: "tag", values: tags } }),
    WCAG_TAGS,
  );
  return violations.map((v) => {
    const targets = v.nodes.slice(0, 3).map((n) => n.target.join(" "));
    const more = v.nodes.length > 3 ? ` (+${v.nodes.length - 3} more)` : "";
    // The first node's finding carries the numbers (a contrast ratio and its colours, a target's size).
    const first = v.nodes[0];
    const why = first && [...first.any, ...first.all, ...first.none][0]?.message;
    return `${v.id} [${v.impact}] ${v.help}: ${targets.join(" | ")}${more}${why ? ` — ${why}` : ""}`;
  });
}

async function expectAccessible(page: Page, what: string): Promise<void> {
  expect(await axeViolations(page), `axe violations on ${what} (${await page.evaluate(() => document.documentElement.dataset.theme)} theme)`).toEqual([]);
}

/** How far the document itself scrolls sideways (WCAG 1.4.10: none at 320 CSS px; a wide table may scroll in its own box). */
const sidewaysScroll = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

/** The overview once its rows hold the seeded traffic. */
async function openOverview(page: Page): Promise<void> {
  await page.goto(`${baseUrl()}/`);
  await waitForLive(page);
  await page.waitForFunction(() => /[1-9]/.test(document.querySelector('[data-client="acme"] [data-cell="today.sent"]')?.textContent ?? ""), null, { timeout: 15_000 });
}

/** acme's page with its totals, chart and category table drawn. */
async function openClient(page: Page): Promise<void> {
  await page.goto(`${baseUrl()}/clients/acme`);
  await waitForLive(page);
  await page.locator('[data-testid="client-chart"] canvas').waitFor();
  await page.locator('[data-testid="client-categories"] tbody tr').first().waitFor();
}

beforeAll(async () => {
  browser = await launchChromium();
  await seed();
});

afterAll(async () => {
  await browser?.close();
});

describe.each(THEMES)("dashboard accessibility, %s theme", (colorScheme) => {
  let context: BrowserContext;
  let page: Page;

  // The theme follows the system's preference until the user picks one (pages/src/theme.ts). The
  // pages' CSP (script-src 'self') would refuse the injected axe script: the test's pages ignore it.
  const newContext = () => browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "pt-BR", colorScheme, bypassCSP: true });

  beforeAll(async () => {
    context = await newContext();
    page = await context.newPage();
    await signInPage(page, "admin@example.com");
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe(colorScheme);
  });

  afterAll(async () => {
    await context?.close();
  });

  it("login page, and its error after a failed sign-in", async () => {
    const signedOut = await newContext();
    const login = await signedOut.newPage();
    await login.goto(`${baseUrl()}/login`);
    await login.getByRole("heading", { name: "Entrar no zapmeter" }).waitFor();
    await expectAccessible(login, "the login page");
    // An address with no account: a failed sign-in that counts towards no real account's lockout.
    await login.getByLabel("E-mail").fill("nobody@example.com");
    await login.getByLabel("Senha").fill("not the password");
    await login.getByRole("button", { name: "Entrar" }).click();
    await login.getByRole("alert").waitFor();
    await expectAccessible(login, "the login page with its error");
    await signedOut.close();
  });

  it("overview with several clients and live numbers", async () => {
    await openOverview(page);
    await expectAccessible(page, "the overview");
    await page.getByTestId("overview-pause").click();
    await page.locator('[data-testid="live-status"][data-status="paused"]').waitFor();
    await expectAccessible(page, "the paused overview");
  });

  it("client page: totals, chart, category table, report export with a range error", async () => {
    await openClient(page);
    await expectAccessible(page, "a client's page");
    await page.getByLabel("De", { exact: true }).fill("2026-11-20T10:00");
    await page.getByLabel("Até", { exact: true }).fill("2026-11-20T09:00");
    await page.getByRole("button", { name: "Baixar" }).click();
    await page.getByRole("alert").waitFor();
    await expectAccessible(page, "a client's report form with its error");
  });

  it("billing day with lines, the admin's recompute button, and the month", async () => {
    await page.goto(`${baseUrl()}/billing`);
    const date = page.getByLabel("Data");
    await date.fill(billingDay);
    await date.press("Enter");
    await page.locator('table[aria-labelledby="billing-title"] tbody tr').first().waitFor();
    await page.getByRole("button", { name: "Recalcular" }).waitFor();
    await page.getByTestId("billing-month-total").first().waitFor();
    await expectAccessible(page, "the billing page");
  });

  it("account page with a password-change error", async () => {
    await page.goto(`${baseUrl()}/account`);
    await page.getByLabel("Senha atual").fill("zapmeter-dev");
    await page.getByLabel("Nova senha", { exact: true }).fill("a new long password");
    await page.getByLabel("Repita a nova senha").fill("a new long passwrod");
    await page.getByRole("button", { name: "Trocar a senha" }).click();
    await page.getByRole("alert").waitFor();
    await expectAccessible(page, "the account page with its error");
  });

  it("not-found page, unknown client, and a client whose details fail to load", async () => {
    await page.goto(`${baseUrl()}/no-such-page`);
    await page.getByRole("link", { name: "← Visão geral" }).waitFor();
    await expectAccessible(page, "the not-found page");
    await page.goto(`${baseUrl()}/clients/no-such-client`);
    await page.getByTestId("unavailable").waitFor({ timeout: 15_000 });
    await expectAccessible(page, "an unknown client's page");
    await page.route("**/v1/clients/globex", (route) => route.fulfill({ status: 503, json: { error: { code: "unavailable", message: "try again" } } }));
    await page.goto(`${baseUrl()}/clients/globex`);
    await page.getByRole("alert").waitFor();
    await expectAccessible(page, "a client's page whose details failed");
    await page.unroute("**/v1/clients/globex");
  });

  it("reflows at 320 CSS px: the overview and a client's page do not scroll sideways", async () => {
    await page.setViewportSize({ width: 320, height: 800 });
    await openOverview(page);
    expect(await sidewaysScroll(page), "overview scrolls sideways at 320 px").toBe(0);
    await expectAccessible(page, "the overview at 320 px");
    await openClient(page);
    expect(await sidewaysScroll(page), "client page scrolls sideways at 320 px").toBe(0);
    await expectAccessible(page, "a client's page at 320 px");
    await page.setViewportSize({ width: 1280, height: 800 });
  });
});
