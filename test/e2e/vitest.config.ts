import { defineConfig } from "vitest/config";

// End-to-end: real HTTP, real WebSockets and headless Chromium against one real `wrangler dev`.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/e2e/**/*.test.ts"],
    globalSetup: ["test/e2e/global-setup.ts"],
    environment: "node",
    // One local workerd serves every file: run files one after another, each with generous timeouts.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
