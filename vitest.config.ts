import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Worker, Durable Object, D1 and R2 logic, tested inside workerd with the project's wrangler.toml.
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            ENVIRONMENT: "development",
            // The suite's tests look into overview-0 for any client. live-overview-shards.test.ts
            // drives the other shards itself, and the e2e suites run wrangler.toml's count.
            OVERVIEW_SHARDS: "1",
            WHATSAPP_APP_SECRET: "test-app-secret",
            WHATSAPP_VERIFY_TOKEN: "test-verify-token",
            SESSION_SECRET: "test-session-secret",
            FILE_SIGNING_SECRET: "test-file-secret",
          },
        },
      }),
    ],
    test: {
      include: ["test/workers/**/*.test.ts"],
      setupFiles: ["./test/workers/apply-migrations.ts"],
      // A timeout here catches a hang, not a slow run: tests that take 2 s on a quiet 2-core machine
      // took over 4 s with the other core busy, and vitest's 5 s default would fail them as if they
      // had hung. The longest waits are the harness's own: a test that evicts the Overview waits for
      // its checkpoint timer (5 s) and may first wait up to 11.5 s to be clear of a minute turn and
      // the Overview's minute tick.
      testTimeout: 30_000,
      // One access-log line per request is what production wants and what a test log does not.
      onConsoleLog: (log: string) => !log.includes('"event":"request"'),
    },
  };
});
