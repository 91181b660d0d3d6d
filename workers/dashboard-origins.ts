/**
 * DASHBOARD_ORIGIN (comma-separated) read as origins, which is what a browser sends: each entry is
 * read as a URL and kept as its origin, since wrangler prints a Pages project's URL with a trailing
 * slash and that is what gets pasted. Entries that are not http(s) URLs let nothing in (one of another
 * scheme has the origin "null", which sandboxed pages send); `npm run deploy` refuses them.
 */
export function readOrigins(value: string): { origins: string[]; unreadable: string[] } {
  const entries = value.split(",").map((entry) => entry.trim()).filter(Boolean);
  return {
    origins: entries.filter(isWebUrl).map((entry) => new URL(entry).origin),
    unreadable: entries.filter((entry) => !isWebUrl(entry)),
  };
}

function isWebUrl(entry: string): boolean {
  const protocol = URL.parse(entry)?.protocol;
  return protocol === "https:" || protocol === "http:";
}
