import type { Plugin } from "vite";

/**
 * The dashboard's own security headers, as `_headers` in the build output: Workers static assets
 * (wrangler.toml [assets]) and Cloudflare Pages both apply that file to the files they serve, which
 * never reach the Worker and its API headers. The page may talk only to its own origin and to the API
 * origin it was built for (VITE_API_ORIGIN, docs/live.md), over HTTPS and WebSockets.
 */
export function securityHeaders(): Plugin {
  let headers: Record<string, string> = {};
  return {
    name: "zapmeter-security-headers",
    // The origin as the bundle sees it: vite's env, which is process.env and pages/.env* files alike.
    configResolved(config) {
      headers = headersFor((config.env.VITE_API_ORIGIN as string | undefined) || undefined);
    },
    generateBundle() {
      const lines = Object.entries(headers).map(([name, value]) => `  ${name}: ${value}`);
      // Hashed file names change with their content, so a browser may keep them for good.
      const assets = "/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n";
      this.emitFile({ type: "asset", fileName: "_headers", source: `/*\n${lines.join("\n")}\n${assets}` });
    },
  };
}

function headersFor(apiOrigin: string | undefined): Record<string, string> {
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
  return {
    "Content-Security-Policy": csp,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
  };
}
