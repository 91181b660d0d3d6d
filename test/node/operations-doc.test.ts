import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url).pathname;

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => readFileSync(join(root, dir, f), "utf8"));
}

/**
 * The events the Worker and the objects log: `log(level, c, "event"…)`, `logLine(level, "event"…)`,
 * and the code of every 5xx answer, which errors.ts logs as the line's event (`storeCall`'s codes too).
 */
function loggedEvents(): Set<string> {
  const text = [...sources("workers"), ...sources("durable-objects")].join("\n");
  const patterns = [
    /\blog\("(?:info|warn|error)",\s*[\w.]+,\s*"([a-z_]+)"/g,
    /\blogLine\("(?:info|warn|error)",\s*"([a-z_]+)"/g,
    /new ApiError\(5\d\d,\s*"([a-z_]+)"/g,
    /storeCall\([^;]*?,\s*"([a-z_]+_unavailable)"/g,
    /code = "([a-z_]+_unavailable)"/g,
  ];
  return new Set(patterns.flatMap((p) => [...text.matchAll(p)].map((m) => m[1]!)));
}

/** The events docs/operations.md's "Log lines" table names (a row may name several). */
function documentedEvents(): Set<string> {
  const doc = readFileSync(join(root, "docs/operations.md"), "utf8");
  const table = doc.slice(doc.indexOf("## Log lines"), doc.indexOf("## Playbooks"));
  const firstCells = table.split("\n").filter((l) => l.startsWith("| `")).map((l) => l.split("|")[1]!);
  return new Set(firstCells.flatMap((cell) => [...cell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!)));
}

describe("docs/operations.md", () => {
  it("explains every event the Worker and the objects log, and no event they do not", () => {
    const logged = loggedEvents();
    // The reader finds the events it should: a pattern that stopped matching would pass vacuously.
    expect([...logged]).toEqual(expect.arrayContaining(["request", "counter_ingest_failed", "lake_flush_failed", "downstream_unavailable", "store_unavailable", "unhandled"]));
    expect([...logged].filter((e) => !documentedEvents().has(e)).sort()).toEqual([]);
    expect([...documentedEvents()].filter((e) => !logged.has(e)).sort()).toEqual([]);
  });
});
