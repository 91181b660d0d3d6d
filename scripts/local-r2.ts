import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { DatabaseSync } from "node:sqlite";
import { ROOT } from "./local-stack.ts";

/** The R2 bucket of wrangler.toml, as the local runtime names its store. */
const BUCKET = "zapmeter-lake";

/**
 * Copies the objects of the local R2 bucket under `prefix` into `outDir` as files named by their keys
 * (`lake/notifications/client_id=…/date=…/part-….parquet`), as `aws s3 sync` or `rclone` does against
 * the real bucket; returns the keys. `wrangler r2 object` has no list and starts a process per object,
 * so this reads the local runtime's store directly: its SQLite index of keys (`_mf_objects`, with the
 * parts of multipart uploads in `_mf_multipart_parts`) and its blob files. That layout is miniflare's,
 * pinned with it in package.json; reading it is safe while `wrangler dev` serves (SQLite WAL, blobs
 * written once).
 */
export async function pullLocalR2(prefix: string, outDir: string, persistTo = join(ROOT, ".wrangler", "state")): Promise<string[]> {
  const r2 = join(persistTo, "v3", "r2");
  const indexDir = join(r2, "miniflare-R2BucketObject");
  const blobs = join(r2, BUCKET, "blobs");
  const index = existsSync(indexDir) ? readdirSync(indexDir).filter((f) => /^[0-9a-f]{64}\.sqlite$/.test(f)) : [];
  if (index.length !== 1 || !existsSync(blobs)) {
    throw new Error(`no local R2 bucket ${BUCKET} under ${r2}: start the stack (npm start) and let it flush first`);
  }
  const db = new DatabaseSync(join(indexDir, index[0]!), { readOnly: true });
  try {
    const objects = db
      .prepare("SELECT key, blob_id FROM _mf_objects WHERE substr(key, 1, ?) = ? ORDER BY key")
      .all(prefix.length, prefix) as { key: string; blob_id: string | null }[];
    const parts = db.prepare("SELECT blob_id FROM _mf_multipart_parts WHERE object_key = ? ORDER BY part_number");
    const root = resolve(outDir);
    for (const { key, blob_id } of objects) {
      const file = resolve(root, key);
      // Keys are ours, but a key is still not allowed to write outside the target directory.
      if (!file.startsWith(root + sep)) throw new Error(`object key ${JSON.stringify(key)} leaves ${root}`);
      mkdirSync(dirname(file), { recursive: true });
      const pieces = blob_id ? [blob_id] : (parts.all(key) as { blob_id: string }[]).map((p) => p.blob_id);
      const out = createWriteStream(file);
      for (const piece of pieces) await pipeline(createReadStream(join(blobs, piece)), out, { end: false });
      await new Promise<void>((done, fail) => out.end((err?: Error | null) => (err ? fail(err) : done())));
    }
    return objects.map((o) => o.key);
  } finally {
    db.close();
  }
}
