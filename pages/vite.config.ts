import { defineConfig } from "vite";
import { securityHeaders } from "./security-headers.ts";

// The dashboard: preact + signals, built into pages/dist (by scripts/dashboard-build.ts, which moves a
// fresh build in without emptying the folder a running stack serves), which the Worker serves as static assets
// (wrangler.toml [assets]); a build for Cloudflare Pages goes to its own folder (`--outDir dist-pages`,
// with VITE_API_ORIGIN; docs/live.md). @preact/preset-vite does
// not support vite 8, so JSX goes through vite's own transform with preact as the import source.
export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  plugins: [securityHeaders()],
});
