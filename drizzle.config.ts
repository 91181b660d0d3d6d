import { defineConfig } from "drizzle-kit";

// One migrations folder, shared with wrangler's `migrations_dir`.
export default defineConfig({
  dialect: "sqlite",
  schema: "./schema/db.ts",
  out: "./migrations",
});
