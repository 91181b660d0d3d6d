import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const dir = new URL("../../migrations/", import.meta.url).pathname;

/**
 * What a migration may do to a database the previous code still runs on (`npm run deploy` applies it
 * before that code stops serving, docs/operations.md, "A deploy"): add a table or an index, or a
 * column the previous code's inserts can leave out (nullable, or with a default). drizzle-kit turns
 * other changes of a SQLite column into a rebuild (a `__new_` table, a DROP and a RENAME), under
 * the previous code's queries.
 */
const ADDITIVE = [/^CREATE TABLE `\w+`/, /^CREATE (UNIQUE )?INDEX /, /^ALTER TABLE `\w+` ADD `\w+` \w+(?: DEFAULT \S+(?: NOT NULL)?)?$/];

/** Each statement of a migration file, without its breakpoints and whitespace. */
function statements(file: string): string[] {
  return readFileSync(join(dir, file), "utf8")
    .split(/--> statement-breakpoint|;/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

describe("migrations/", () => {
  it("only add what the code before each one can run beside", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".sql") && !f.startsWith("0000_"));
    expect(files.length).toBeGreaterThan(0);
    const unsafe = files.flatMap((f) => statements(f).filter((s) => !ADDITIVE.some((p) => p.test(s))).map((s) => `${f}: ${s.split("\n")[0]}`));
    expect(unsafe).toEqual([]);
  });

  it("are each in drizzle-kit's journal, whose last names the newest file (what /health asks D1 for)", () => {
    const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
    const journal = JSON.parse(readFileSync(join(dir, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };
    expect(journal.entries.map((e) => `${e.tag}.sql`)).toEqual(files);
  });
});
