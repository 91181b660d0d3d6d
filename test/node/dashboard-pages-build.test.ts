import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "vite";
import { describe, expect, it, onTestFinished } from "vitest";

const ROOT = join(import.meta.dirname, "../..");

describe("the dashboard built for Cloudflare Pages (docs/live.md)", () => {
  it("lets the page reach the API origin it was built for, however vite got VITE_API_ORIGIN (a pages/.env.production file too)", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "zapmeter-pages-env-"));
    onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
    writeFileSync(join(tmp, ".env.production"), "VITE_API_ORIGIN=https://zapmeter.example.workers.dev\n");
    const saved = process.env.VITE_API_ORIGIN;
    delete process.env.VITE_API_ORIGIN;
    onTestFinished(() => {
      if (saved !== undefined) process.env.VITE_API_ORIGIN = saved;
    });
    // pages/vite.config.ts as it is; only where vite looks for .env files and the output move to tmp.
    await build({ configFile: join(ROOT, "pages/vite.config.ts"), envDir: tmp, logLevel: "silent", build: { outDir: join(tmp, "out"), emptyOutDir: true } });
    const assets = join(tmp, "out/assets");
    const js = readdirSync(assets).filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(assets, f), "utf8")).join("\n");
    expect(js).toContain("https://zapmeter.example.workers.dev");
    const headers = readFileSync(join(tmp, "out/_headers"), "utf8");
    expect(/Content-Security-Policy: (.*)/.exec(headers)?.[1]).toContain("connect-src 'self' https://zapmeter.example.workers.dev wss://zapmeter.example.workers.dev;");
    expect(headers).toContain("/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n");
  }, 120_000);
});
