/** Rows per bulk statement whose rows travel as one JSON parameter: well under D1's 2 MB value limit. */
export const JSON_ROWS_PER_STATEMENT = 2000;

/** `items` in consecutive slices of at most `size` (D1 bounds a statement's parameters and their size). */
export function inChunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** One page of a bounded deletion: how many went, and whether a full page says more may be left. */
export interface DeletedPage {
  deleted: number;
  more: boolean;
}

/**
 * Deletes page by page (each at most `page`, and never past `budget` in all) until a page says none
 * is left: a nightly deletion that ends whatever the backlog, the rest left for the next nights.
 * `done` is false when the budget ran out first.
 */
export async function deleteInPages(budget: number, page: number, deletePage: (limit: number) => Promise<DeletedPage>): Promise<{ deleted: number; done: boolean }> {
  let deleted = 0;
  while (deleted < budget) {
    const step = await deletePage(Math.min(page, budget - deleted));
    deleted += step.deleted;
    if (!step.more) return { deleted, done: true };
  }
  return { deleted, done: false };
}
