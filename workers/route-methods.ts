/**
 * The methods an app's route table serves at a path, so that a request for a path it serves, with a
 * method it does not, is answered 405 with `Allow` (RFC 9110 §15.5.6) instead of 404. Middleware
 * entries (method ALL) serve no path of their own.
 */
export function routeMethods(routes: readonly { method: string; path: string }[]): (path: string) => string[] {
  const byPath = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const r of routes) {
    if (r.method === "ALL") continue;
    let entry = byPath.get(r.path);
    if (!entry) byPath.set(r.path, (entry = { pattern: patternOf(r.path), methods: new Set() }));
    entry.methods.add(r.method);
  }
  return (path) => {
    const methods = new Set<string>();
    for (const { pattern, methods: served } of byPath.values()) if (pattern.test(path)) for (const m of served) methods.add(m);
    // Hono answers HEAD with the GET route.
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}

/** A Hono path (`/v1/clients/:id`, `/v1/files/:key{.+}`) as a regular expression over request paths. */
function patternOf(path: string): RegExp {
  const segments = path.split("/").map((segment) => {
    const param = /^:\w+(?:\{(.+)\})?$/.exec(segment);
    if (param) return param[1] ? `(?:${param[1]})` : "[^/]+";
    return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  });
  // Exact, trailing slash included: Hono routes strictly, so `/health/` is not `/health`.
  return new RegExp(`^${segments.join("/")}$`);
}
