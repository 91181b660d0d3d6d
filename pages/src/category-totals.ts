import { signal } from "@preact/signals";
import type { CategoriesResponse, CategoryCounts } from "../../schema/api.ts";
import { localDate, localDayRange } from "../../schema/time.ts";
import { api } from "./api.ts";

/** Least time between two reads: the table follows the live counts without a request per update. */
export const CATEGORY_REFRESH_MS = 5_000;

/**
 * Today's counts of one client by pricing category (its local day, as the live totals count it),
 * read from `GET /v1/clients/:id/categories`: the live stream carries totals by status only.
 */
export class CategoryTotals {
  readonly rows = signal<CategoryCounts[] | null>(null);
  /** Why the last read failed (an ApiFailure or a network error; it is tried again); null after one that worked. */
  readonly error = signal<unknown>(null);
  private lastRead = Number.NEGATIVE_INFINITY;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private reading = false;
  /** Asked for while a read was on its way: that read may have missed what prompted it. */
  private again = false;
  private stopped = false;

  constructor(
    readonly clientId: string,
    readonly timezone: string,
  ) {}

  /** Reads again now, or as soon as `CATEGORY_REFRESH_MS` has passed since the last read; calls in between share that read. */
  refresh(): void {
    if (this.stopped) return;
    if (this.reading) this.again = true;
    if (this.reading || this.timer !== undefined) return;
    const wait = Math.max(0, this.lastRead + CATEGORY_REFRESH_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.read();
    }, wait);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async read(): Promise<void> {
    this.reading = true;
    this.lastRead = Date.now();
    const [from, to] = localDayRange(localDate(this.lastRead, this.timezone), this.timezone);
    const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    try {
      const res = await api<CategoriesResponse>(`/v1/clients/${encodeURIComponent(this.clientId)}/categories?${q}`);
      if (this.stopped) return;
      this.rows.value = res.categories;
      this.error.value = null;
    } catch (err) {
      if (this.stopped) return;
      this.error.value = err;
      // A quiet client's totals may not move again: try again, spaced as any read.
      this.again = true;
    } finally {
      this.reading = false;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    }
  }
}
