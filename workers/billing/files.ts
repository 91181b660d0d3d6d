import { parquetWriteBuffer } from "hyparquet-writer";
import type { BillingFormat, BillingLine } from "../../schema/billing.ts";
import { defuseFormula, quoteField } from "../../schema/csv-cells.ts";
import type { RevisionLines } from "./store.ts";

/**
 * The day's billing files in R2. Their bytes depend only on the lines and the revision (no
 * timestamps, a fixed writer name), so recomputing an unchanged day yields byte-identical files.
 */

const CSV_COLUMNS = [
  "date",
  "revision",
  "client_id",
  "client_name",
  "category",
  "country",
  "billable_count",
  "unit_price_micros",
  "amount_micros",
  "currency",
] as const;

const CONTENT_TYPES: Record<BillingFormat, string> = {
  csv: "text/csv; charset=utf-8",
  parquet: "application/vnd.apache.parquet",
};

/**
 * R2 key of a day's file (DESIGN.md, R2 layout): the current one, rewritten by each new revision, or
 * with `revision` the archived copy of that revision, never rewritten, so finance can get back the
 * numbers it invoiced after a late event or a price correction re-billed the day.
 */
export function billingKey(date: string, format: BillingFormat, revision?: number): string {
  return revision === undefined ? `billing/date=${date}/billing.${format}` : `billing/date=${date}/revision=${revision}/billing.${format}`;
}

/** Finance opens this file in spreadsheets: text is defused as well as quoted. */
function csvCell(value: string | number): string {
  return typeof value === "number" ? String(value) : quoteField(defuseFormula(value));
}

/** The day's CSV: header, then one CRLF-terminated row per line in the given order. */
export function billingCsv(date: string, revision: number, lines: BillingLine[]): string {
  const rows = lines.map((l) =>
    [date, revision, l.client_id, l.client_name, l.category, l.country, l.billable_count, l.unit_price_micros, l.amount_micros, l.currency]
      .map(csvCell)
      .join(","),
  );
  return [CSV_COLUMNS.join(","), ...rows].join("\r\n") + "\r\n";
}

/** The day's Parquet file, same columns as the CSV, integers as INT64. */
function billingParquet(date: string, revision: number, lines: BillingLine[]): ArrayBuffer {
  const text = (name: string, data: string[]) => ({ name, data, type: "STRING" as const, nullable: false });
  const int64 = (name: string, data: number[]) => ({ name, data: data.map(BigInt), type: "INT64" as const, nullable: false });
  return parquetWriteBuffer({
    columnData: [
      text("date", lines.map(() => date)),
      { name: "revision", data: lines.map(() => revision), type: "INT32", nullable: false },
      text("client_id", lines.map((l) => l.client_id)),
      text("client_name", lines.map((l) => l.client_name)),
      text("category", lines.map((l) => l.category)),
      text("country", lines.map((l) => l.country)),
      int64("billable_count", lines.map((l) => l.billable_count)),
      int64("unit_price_micros", lines.map((l) => l.unit_price_micros)),
      int64("amount_micros", lines.map((l) => l.amount_micros)),
      text("currency", lines.map((l) => l.currency)),
    ],
    createdBy: "zapmeter billing",
  });
}

/**
 * Writes both files, current and archived, unless R2 already holds this revision's (a run that
 * crashed between the D1 commit and the upload is repaired by the next run). Returns the current
 * keys. `lines` reads the day's lines with the revision they make up: when a later revision has
 * committed meanwhile, they are not this revision's, and that revision's run writes the files.
 */
export async function ensureBillingFiles(
  bucket: R2Bucket,
  date: string,
  revision: number,
  lines: () => Promise<RevisionLines>,
): Promise<string[]> {
  const keys = [billingKey(date, "csv"), billingKey(date, "parquet")];
  const archived = [billingKey(date, "csv", revision), billingKey(date, "parquet", revision)];
  const heads = await Promise.all([...keys, ...archived].map((k) => bucket.head(k)));
  if (heads.every((h) => h?.customMetadata?.revision === String(revision))) return keys;
  const day = await lines();
  if (day.revision !== revision) return keys;
  const bodies: Record<BillingFormat, string | ArrayBuffer> = {
    csv: billingCsv(date, revision, day.lines),
    parquet: billingParquet(date, revision, day.lines),
  };
  const options = (format: BillingFormat, filename: string): R2PutOptions => ({
    httpMetadata: { contentType: CONTENT_TYPES[format], contentDisposition: `attachment; filename="${filename}"` },
    customMetadata: { revision: String(revision) },
  });
  await Promise.all(
    (["csv", "parquet"] as const).flatMap((format, i) => [
      bucket.put(billingKey(date, format, revision), bodies[format], options(format, `billing-${date}-r${revision}.${format}`)),
      putUnlessNewer(bucket, heads[i]!, keys[i]!, revision, bodies[format], options(format, `billing-${date}.${format}`)),
    ]),
  );
  return keys;
}

/** Attempts at replacing a current file before leaving it to the day's next run, each lost to a concurrent writer. */
const CURRENT_FILE_ATTEMPTS = 3;

/**
 * Puts `revision`'s current file unless R2 holds that revision's or a later one's: a slow run must
 * not put an older revision over a newer run's file. Conditional on the file `seen` (the caller's
 * look at it), so a run that writes between the look and the put makes this one look again.
 */
async function putUnlessNewer(bucket: R2Bucket, seen: R2Object | null, key: string, revision: number, body: string | ArrayBuffer, options: R2PutOptions): Promise<void> {
  let head = seen;
  for (let attempt = 0; attempt < CURRENT_FILE_ATTEMPTS; attempt++, head = await bucket.head(key)) {
    if (head !== null && Number(head.customMetadata?.revision) >= revision) return;
    const onlyIf: R2Conditional = head === null ? { etagDoesNotMatch: "*" } : { etagMatches: head.etag };
    if ((await bucket.put(key, body, { ...options, onlyIf })) !== null) return;
  }
}

/** The key holding `revision`'s file: its archive, or the current file for a day billed before archives were kept. */
export async function revisionFile(bucket: R2Bucket, date: string, format: BillingFormat, revision: number): Promise<string | undefined> {
  if (revision === 0) return undefined;
  const archived = billingKey(date, format, revision);
  if (await bucket.head(archived)) return archived;
  const current = billingKey(date, format);
  return (await bucket.head(current))?.customMetadata?.revision === String(revision) ? current : undefined;
}
