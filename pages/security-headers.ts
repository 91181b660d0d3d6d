import type { Plugin } from "vite";

/**
 * The dashboard's own security headers, as `_headers` in the build output: Workers static assets
 * (wrangler.toml [assets]) and Cloudflare Pages both apply that file to the files they serve, which
 * never reach the Worker and its API headers. The page may talk only to its own origin and to the API
 * origin it was built for (VITE_API_ORIGIN, docs/live.md), over HTTPS and WebSockets.
 */
export function securityHeaders(apiOrigin: string | undefined): Plugin {
  const api = apiOrigin ? new URL(apiOrigin) : null;
  const connect = ["'self'", ...(api ? [api.origin, `${api.protocol === "https:" ? "wss:" : "ws:"}//${api.host}`] : [])];
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect.join(" ")}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  const headers = {
    "Content-Security-Policy": csp,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
  };
  return {
    name: "zapmeter-security-headers",
    generateBundle() {
      const lines = Object.entries(headers).map(([name, value]) => `  ${name}: ${value}`);
      this.emitFile({ type: "asset", fileName: "_headers", source: `/*\n${lines.join("\n")}\n` });
    },
  };
}
