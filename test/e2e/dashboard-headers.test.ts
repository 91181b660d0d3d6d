import { describe, expect, it } from "vitest";
import { baseUrl } from "./helpers.ts";

describe("the dashboard's own security headers (pages/security-headers.ts → _headers)", () => {
  it("come with every page the static assets serve, and the API keeps its own", async () => {
    for (const path of ["/", "/clients/acme", "/billing"]) {
      const res = await fetch(`${baseUrl()}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/html/);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      await res.body?.cancel();
    }
    const api = await fetch(`${baseUrl()}/health`);
    expect(api.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(api.headers.get("content-security-policy")).not.toContain("script-src");
  });

  it("let a browser keep the hashed assets for good and revalidate the page that names them", async () => {
    const page = await fetch(`${baseUrl()}/`);
    expect(page.headers.get("cache-control")).not.toContain("immutable");
    const script = /<script[^>]+src="(\/assets\/[^"]+\.js)"/.exec(await page.text())?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${baseUrl()}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    await asset.body?.cancel();
  });
});

describe("paths next to the API's", () => {
  it("are the API's: a JSON 404 or 405, not the dashboard's page", async () => {
    for (const [method, path, status] of [
      ["GET", "/v1", 404],
      ["GET", "/v1/", 404],
      ["GET", "/health/", 404],
      ["GET", "/health/deep", 404],
      ["POST", "/health", 405],
      ["DELETE", "/v1", 404],
    ] as const) {
      const res = await fetch(`${baseUrl()}${path}`, { method });
      expect([path, res.status, res.headers.get("content-type")]).toEqual([path, status, expect.stringMatching(/^application\/json/)]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBeTruthy();
    }
  });
});
