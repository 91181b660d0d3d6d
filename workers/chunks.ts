/** Rows per bulk statement whose rows travel as one JSON parameter: well under D1's 2 MB value limit. */
export const JSON_ROWS_PER_STATEMENT = 2000;

/** `items` in consecutive slices of at most `size` (D1 bounds a statement's parameters and their size). */
export function inChunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
