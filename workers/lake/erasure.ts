import { COLUMN_INDEX } from "./columns.ts";
import { compactParts, liveFilesByShard, type CompactionResult } from "./compaction.ts";
import { clientPrefix, type Part } from "./layout.ts";
import { openAhead } from "./read-ahead.ts";

const RECIPIENT = COLUMN_INDEX.recipient;

/**
 * Rewrites, without `recipient`'s rows, the files of one client-day partition that hold any: each
 * shard's live files as one, through the compaction's path (the new file complete before the old ones
 * go, its source map accounting for the rows left out), so a reader never misses a row nor sees one
 * twice. A shard's files without the recipient are read, not rewritten. Running it again after a
 * failure at any step finds what is left to do: the rewritten file covers, and so supersedes, what it
 * replaced. `rewritten` is told of each file once it is complete, before the deletes (`compactParts`).
 */
export async function erasePartition(bucket: R2Bucket, clientId: string, date: string, recipient: string, rewritten: (result: CompactionResult) => void): Promise<void> {
  for (const parts of await liveFilesByShard(bucket, clientId, date)) {
    if (await holds(bucket, parts, recipient)) await compactParts(bucket, clientId, date, parts, (row) => row[RECIPIENT] === recipient, rewritten);
  }
}

/** Whether any of `parts` has a row of `recipient`. */
async function holds(bucket: R2Bucket, parts: Part[], recipient: string): Promise<boolean> {
  const files = openAhead(bucket, parts);
  try {
    for await (const { opened } of files) for await (const rows of (await opened).rows()) if (rows.some((r) => r[RECIPIENT] === recipient)) return true;
    return false;
  } finally {
    await files.return(undefined);
  }
}

/** The UTC dates of a client's lake partitions, oldest first (one list call per 1,000 days). */
export async function lakeDays(bucket: R2Bucket, clientId: string): Promise<string[]> {
  const root = `${clientPrefix(clientId)}date=`;
  const days: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: root, delimiter: "/", cursor });
    for (const prefix of page.delimitedPrefixes) days.push(prefix.slice(root.length, -1));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return days;
}
