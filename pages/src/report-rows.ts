import type { ReportFormat } from "../../schema/api.ts";

/** Whether a CSV report is its header row alone (the report's rows end in CRLF). */
async function csvHeaderOnly(csv: Blob): Promise<boolean> {
  const head = new Uint8Array(await csv.slice(0, 64 * 1024).arrayBuffer());
  const end = head.findIndex((b, i) => b === 0x0d && head[i + 1] === 0x0a);
  return end >= 0 && csv.size === end + 2;
}

/**
 * Whether a Parquet report's footer counts no rows. Only the footer is read (its length sits in the
 * 4 bytes before the closing `PAR1`), so a large report is not read twice; hyparquet is loaded only
 * when a Parquet report is saved. A file that does not parse is not called empty: the notice is only
 * a courtesy, and the file was saved either way.
 */
async function parquetRowless(file: Blob): Promise<boolean> {
  try {
    const footerLength = new DataView(await file.slice(-8, -4).arrayBuffer()).getUint32(0, true);
    const { parquetMetadata } = await import("hyparquet");
    return parquetMetadata(await file.slice(-footerLength - 8).arrayBuffer()).num_rows === 0n;
  } catch {
    return false;
  }
}

/** Whether a downloaded report holds no event, which the page says: an empty file looks like a failure. */
export function reportRowless(file: Blob, format: ReportFormat): Promise<boolean> {
  return format === "csv" ? csvHeaderOnly(file) : parquetRowless(file);
}
