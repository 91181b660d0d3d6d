import { inject } from "vitest";
import { metaSignature as signedAsMeta } from "../../scripts/demo/meta-signature.ts";

/** Base URL of the wrangler dev started by the global setup. */
export const baseUrl = (): string => inject("baseUrl");

export const DEV_APP_SECRET = "dev-app-secret";

/** Signs a raw webhook body as Meta does. */
export function metaSignature(body: string, secret = DEV_APP_SECRET): string {
  return signedAsMeta(body, secret);
}

/** Signs in through the API and returns the bearer token. */
export async function login(email: string, password = "zapmeter-dev"): Promise<string> {
  const res = await fetch(`${baseUrl()}/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Debian's Chromium, headless: `playwright install` downloads from a CDN these machines cannot reach. */
export function launchChromium(): Promise<import("playwright-core").Browser> {
  return import("playwright-core").then(({ chromium }) =>
    chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    }),
  );
}

/** Signs in through the dashboard's login form and waits for the overview. */
export async function signInPage(page: import("playwright-core").Page, email: string, password = "zapmeter-dev"): Promise<void> {
  await page.goto(`${baseUrl()}/login`);
  await page.locator('input[name="email"]').fill(email);
  await page.locator('input[name="password"]').fill(password);
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((u) => u.pathname === "/");
}

/** Waits for the page's live badge to say it is live: the socket open and its snapshot on screen. */
export function waitForLive(page: import("playwright-core").Page): Promise<void> {
  return page.locator('[data-testid="live-status"][data-status="live"]').waitFor({ timeout: 15_000 });
}
