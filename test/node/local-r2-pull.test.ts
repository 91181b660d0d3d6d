import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it, onTestFinished } from "vitest";
import { pullLocalR2 } from "../../scripts/local-r2.ts";

/**
 * `npm run lake:pull` against a local R2 store laid out as miniflare keeps it (the e2e lake test
 * pulls a real one; its files are single blobs, so the multipart case is built here, in the layout
 * of miniflare's r2 bucket.worker: parts linked to their object by `object_key`, the object's
 * `blob_id` NULL).
 */
function fakeStore(objects: { key: string; blobs: string[] }[]): string {
  const state = mkdtempSync(join(tmpdir(), "zapmeter-r2-"));
  onTestFinished(() => rmSync(state, { recursive: true, force: true }));
  const index = join(state, "v3", "r2", "miniflare-R2BucketObject");
  const blobs = join(state, "v3", "r2", "zapmeter-lake", "blobs");
  mkdirSync(index, { recursive: true });
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(index, "metadata.sqlite"), "");
  const db = new DatabaseSync(join(index, `${"ab".repeat(32)}.sqlite`));
  db.exec(`CREATE TABLE _mf_objects (key TEXT PRIMARY KEY, blob_id TEXT);
    CREATE TABLE _mf_multipart_parts (upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, blob_id TEXT NOT NULL, object_key TEXT)`);
  let n = 0;
  for (const { key, blobs: pieces } of objects) {
    const ids = pieces.map((content) => {
      const id = `blob${n++}`;
      writeFileSync(join(blobs, id), content);
      return id;
    });
    db.prepare("INSERT INTO _mf_objects VALUES (?, ?)").run(key, ids.length === 1 ? ids[0]! : null);
    // Stored out of order: the part number, not the insertion, orders them.
    for (const [i, id] of [...ids.entries()].reverse()) db.prepare("INSERT INTO _mf_multipart_parts VALUES ('u', ?, ?, ?)").run(i + 1, id, key);
  }
  db.close();
  return state;
}

describe("pullLocalR2", () => {
  it("copies the objects under a prefix as files named by their keys, multipart ones assembled in part order", async () => {
    const state = fakeStore([
      { key: "lake/notifications/client_id=a/date=2026-12-01/part-1-2.parquet", blobs: ["small"] },
      { key: "lake/notifications/client_id=a/date=2026-11-30/part-1-9.parquet", blobs: ["first-", "second-", "third"] },
      { key: "lake/notifications/client_id=b/date=2026-12-01/part-1-1.parquet", blobs: ["other client"] },
      { key: "billing/date=2026-11-30/billing.csv", blobs: ["not the lake"] },
    ]);
    const out = mkdtempSync(join(tmpdir(), "zapmeter-pulled-"));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));

    expect(await pullLocalR2("lake/notifications/client_id=a/", out, state)).toEqual([
      "lake/notifications/client_id=a/date=2026-11-30/part-1-9.parquet",
      "lake/notifications/client_id=a/date=2026-12-01/part-1-2.parquet",
    ]);
    const a = join(out, "lake", "notifications", "client_id=a");
    expect(readFileSync(join(a, "date=2026-11-30", "part-1-9.parquet"), "utf8")).toBe("first-second-third");
    expect(readFileSync(join(a, "date=2026-12-01", "part-1-2.parquet"), "utf8")).toBe("small");
    expect(readdirSync(join(out, "lake", "notifications"))).toEqual(["client_id=a"]);
  });

  it("refuses a key that would write outside the target directory, and says when there is no local bucket", async () => {
    const state = fakeStore([{ key: "lake/../../escaped", blobs: ["x"] }]);
    const out = mkdtempSync(join(tmpdir(), "zapmeter-pulled-"));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
    await expect(pullLocalR2("lake/", out, state)).rejects.toThrow(/leaves/);
    await expect(pullLocalR2("lake/", out, join(out, "nothing-here"))).rejects.toThrow(/npm start/);
  });
});
