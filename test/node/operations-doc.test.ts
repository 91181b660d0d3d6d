import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { describe, expect, it } from "vitest";
import { DEV_SECRETS, PREVIOUS_SECRET_NAMES } from "../../schema/dev-credentials.ts";

const root = new URL("../../", import.meta.url).pathname;

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => readFileSync(join(root, dir, f), "utf8"));
}

/**
 * The events the Worker and the objects log: `log(level, c, "event"…)`, `logLine(level, "event"…)`, `logOnce(…)`,
 * and the code of every 5xx answer, which errors.ts logs as the line's event (`storeCall`'s codes too).
 */
function loggedEvents(): Set<string> {
  const text = [...sources("workers"), ...sources("durable-objects")].join("\n");
  const patterns = [
    /\blog\("(?:info|warn|error)",\s*[\w.]+,\s*"([a-z_]+)"/g,
    /\blogLine\("(?:info|warn|error)",\s*"([a-z_]+)"/g,
    /\blogOnce\("(?:info|warn|error)",\s*"([a-z_]+)"/g,
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

/** README.md's section from `## title` to the next `## `. */
function readmeSection(title: string): string {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README section "${title}"`).toBeGreaterThan(-1);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

/** wrangler.toml's `key = "value"` lines (every occurrence), and its [vars] keys. */
function wranglerToml(): { values(key: string): string[]; vars: string[] } {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const varsBlock = toml.slice(toml.indexOf("\n[vars]\n")).split(/\n\[(?!vars\])/)[0]!;
  return {
    values: (key) => [...toml.matchAll(new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, "gm"))].map((m) => m[1]!),
    vars: [...varsBlock.matchAll(/^([A-Z_]+)\s*=/gm)].map((m) => m[1]!),
  };
}

describe("README.md's Configuration and Deploy sections", () => {
  const rows = [...readmeSection("Configuration").matchAll(/^\| `([A-Z_]+)` \| (secret|var) \|.*\| `?([^`|]*?)`? [|(]/gm)].map((m) => ({ name: m[1]!, kind: m[2]!, dev: m[3]! }));
  const deploy = readmeSection("Deploy to a Cloudflare account");

  it("lists every secret the Worker checks, with .dev.vars.example's value (the previous ones unset), and every wrangler.toml var", () => {
    const example = parseEnv(readFileSync(join(root, ".dev.vars.example"), "utf8"));
    const secrets = rows.filter((r) => r.kind === "secret");
    expect(secrets.map((r) => r.name).sort()).toEqual([...Object.keys(DEV_SECRETS), ...PREVIOUS_SECRET_NAMES].sort());
    expect(Object.keys(example).sort()).toEqual(Object.keys(DEV_SECRETS).sort());
    for (const r of secrets) {
      const dev = DEV_SECRETS[r.name as keyof typeof DEV_SECRETS] as string | undefined;
      expect(r.dev).toBe(dev ?? "unset");
      expect(example[r.name]).toBe(dev);
    }
    expect(rows.filter((r) => r.kind === "var").map((r) => r.name).sort()).toEqual(wranglerToml().vars.sort());
  });

  it("names only bindings, vars and secrets that exist: every `env.NAME` the code reads", () => {
    const toml = wranglerToml();
    const known = new Set([...toml.values("binding"), ...toml.values("name"), ...toml.vars, ...Object.keys(DEV_SECRETS), ...PREVIOUS_SECRET_NAMES]);
    const read = new Set([...[...sources("workers"), ...sources("durable-objects")].join("\n").matchAll(/\benv\.([A-Z][A-Z0-9_]+)\b/g)].map((m) => m[1]!));
    expect(read.size).toBeGreaterThan(5);
    expect([...read].filter((n) => !known.has(n)).sort()).toEqual([]);
  });

  it("creates the D1 database and R2 buckets wrangler.toml names, and puts every secret", () => {
    const toml = wranglerToml();
    expect([...deploy.matchAll(/wrangler d1 create (\S+)/g)].map((m) => m[1])).toEqual(toml.values("database_name"));
    expect([...deploy.matchAll(/wrangler r2 bucket create (\S+)/g)].map((m) => m[1]).sort()).toEqual(toml.values("bucket_name").sort());
    const loop = /for s in ([A-Z_ ]+); do\s+npx wrangler secret put "\$s"/.exec(deploy);
    expect(loop?.[1]!.trim().split(/\s+/).sort()).toEqual(Object.keys(DEV_SECRETS).sort());
    // The first admin goes into the Worker's database, named by its binding.
    const d1Binding = /\[\[d1_databases\]\]\s*binding\s*=\s*"([^"]+)"/.exec(readFileSync(join(root, "wrangler.toml"), "utf8"))?.[1];
    expect([...deploy.matchAll(/wrangler d1 execute (\S+) --remote/g)].map((m) => m[1])).toEqual([d1Binding]);
  });
});
