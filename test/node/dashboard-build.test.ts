import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { publishBuild } from "../../scripts/dashboard-build.ts";

/**
 * How a fresh dashboard build replaces the one a running `npm start` serves (scripts/dashboard-build.ts):
 * the folder must hold a whole dashboard at every moment, so what the page names goes in before the
 * page, and what the new page no longer names goes only after it.
 */
function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "zapmeter-pages-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const OLD = {
  "index.html": '<script src="/assets/index-old.js"></script>',
  _headers: "/*\n  X-Frame-Options: DENY\n",
  "assets/index-old.js": "old();",
  "assets/index.css": "body{}",
};
const NEW = {
  "index.html": '<script src="/assets/index-new.js"></script>',
  _headers: "/*\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n",
  "assets/index-new.js": "new();",
  "assets/index.css": "body{}",
};

describe("moving a dashboard build into the served folder", () => {
  it("moves the assets first, then _headers and index.html, and removes what the new build lacks last", () => {
    const served = folder(OLD);
    const unchanged = statSync(join(served, "assets/index.css"));
    const result = publishBuild(folder(NEW), served);
    expect(result).toEqual({ moved: ["assets/index-new.js", "_headers", "index.html"], removed: ["assets/index-old.js"] });
    for (const [path, content] of Object.entries(NEW)) expect(readFileSync(join(served, path), "utf8")).toBe(content);
    expect(existsSync(join(served, "assets/index-old.js"))).toBe(false);
    // A file the build did not change is left as it was: no write for wrangler's watcher to see.
    const after = statSync(join(served, "assets/index.css"));
    expect([after.ino, after.mtimeMs]).toEqual([unchanged.ino, unchanged.mtimeMs]);
  });

  it("touches nothing when the build is the one already served", () => {
    const served = folder(NEW);
    expect(publishBuild(folder(NEW), served)).toEqual({ moved: [], removed: [] });
  });

  it("creates the folder on a first build", () => {
    const parent = folder({});
    const served = join(parent, "dist");
    expect(publishBuild(folder(NEW), served)).toEqual({ moved: ["assets/index-new.js", "assets/index.css", "_headers", "index.html"], removed: [] });
    for (const [path, content] of Object.entries(NEW)) expect(readFileSync(join(served, path), "utf8")).toBe(content);
  });
});
