import { defineConfig } from "vitest/config";

// Node-side logic: scripts, the Kafka bridge core, DuckDB interop helpers.
export default defineConfig({
  test: {
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/node/**/*.test.ts"],
    environment: "node",
    testTimeout: 60_000,
  },
});
