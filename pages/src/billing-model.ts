import { computed, signal, type Signal } from "@preact/signals";
import { type BillingFormat, type BillingLine, type BillingResponse, type BillingSummary, type DownloadResponse } from "../../schema/billing.ts";
import { addDays, localDate } from "../../schema/time.ts";

/** A JSON GET of the API (`api` in api.ts; the tests hand in their own). */
export type Ask = <T>(path: string) => Promise<T>;
/** A JSON POST of the API (`postJson` in api.ts). */
export type Post = <T>(path: string, body: unknown) => Promise<T>;

/** How long a picked date waits for the next change before it loads. */
export const CHANGE_SETTLE_MS = 400;

/** A billing line's identity within a day. */
export const lineKey = (l: { client_id: string; category: string; country: string }) => `${l.client_id}|${l.category}|${l.country}`;

/**
 * Requests of which only the answer to the last one asked counts: a slower answer to an earlier
 * question (another day, another month) must not overwrite the one on screen.
 */
class LatestOnly {
  private asked = 0;

  /** Starts a request; the function says whether it is still the last one started. */
  start(): () => boolean {
    const n = ++this.asked;
    return () => n === this.asked;
  }
}

/**
 * A day's billing (GET /v1/billing) and its signed downloads. The lines, the revision and any error
 * are always of one day, `shown`: a new date clears the old day's lines, and an answer for a date
 * asked before the latest is dropped.
 */
export class BillingDayModel {
  /** The date in the field. */
  readonly date: Signal<string>;
  /** The day whose lines are shown (or loading). */
  readonly shown = signal<string | null>(null);
  readonly lines = signal<BillingLine[] | null>(null);
  /** The shown lines no rate card prices (billed at 0), by lineKey. */
  readonly unpriced = signal<ReadonlySet<string>>(new Set());
  readonly revision = signal<number | null>(null);
  /** When the shown revision was computed (epoch ms); null before the day's first computation. */
  readonly computedAt = signal<number | null>(null);
  readonly openClients = signal(0);
  /** When the cron bills the shown day, never computed yet: from its first client to its last (README, "Billing"); null otherwise. */
  readonly due = signal<{ from: number; to: number } | null>(null);
  readonly error = signal<unknown>(null);
  readonly loading = computed(() => this.shown.value !== null && this.lines.value === null && this.error.value == null);
  /** Text that picks clients by id or name; it stays as the day changes, to follow one client across days. */
  readonly filter = signal("");
  /** The shown lines of the clients the filter picks (all of them with no filter). */
  readonly filtered = computed(() => {
    const q = this.filter.value.trim().toLocaleLowerCase();
    const lines = this.lines.value ?? [];
    return q === "" ? lines : lines.filter((l) => l.client_id.toLocaleLowerCase().includes(q) || l.client_name.toLocaleLowerCase().includes(q));
  });
  /** Whether the shown day has files: a day never computed (revision 0) has none, and a click could only fail. */
  readonly downloadable = computed(() => (this.revision.value ?? 0) > 0);
  /** While an admin's "compute now" of the shown day runs. */
  readonly computing = signal(false);
  private readonly latest = new LatestOnly();
  private settling: ReturnType<typeof setTimeout> | undefined;

  /** `onComputed` hears of every day an admin computed here, for what else shows that day (the month). */
  constructor(
    private readonly ask: Ask,
    date: string,
    private readonly post: Post,
    private readonly onComputed: (day: string) => void = () => {},
  ) {
    this.date = signal(date);
  }

  /** Loads `day` (the date in the field) now. */
  async load(day = this.date.value): Promise<void> {
    clearTimeout(this.settling);
    const current = this.latest.start();
    this.shown.value = day;
    this.lines.value = null;
    this.revision.value = null;
    this.computedAt.value = null;
    this.due.value = null;
    this.error.value = null;
    try {
      const res = await this.ask<BillingResponse>(`/v1/billing?date=${day}`);
      if (!current()) return;
      this.lines.value = res.lines;
      this.unpriced.value = new Set(res.unpriced.map(lineKey));
      this.revision.value = res.revision;
      this.computedAt.value = res.computed_at;
      this.openClients.value = res.open_clients;
      this.due.value = res.revision === 0 ? res.due : null;
    } catch (err) {
      if (current()) this.error.value = err;
    }
  }

  /**
   * Loads the date once the field settles: stepping through days with the arrow keys fires a change
   * per key, and each load would announce "loading" and clear the table.
   */
  loadSoon(): void {
    clearTimeout(this.settling);
    this.settling = setTimeout(() => void this.load(), CHANGE_SETTLE_MS);
  }

  /**
   * Computes the shown day now (POST /v1/billing/:date/run, admins): a day the cron has not reached
   * yet, or one to recompute after a price changed. Then shows the day as computed.
   */
  async compute(): Promise<void> {
    const day = this.shown.value;
    if (day === null || this.computing.value) return;
    this.computing.value = true;
    try {
      await this.post(`/v1/billing/${day}/run`, {});
      this.onComputed(day);
      if (day === this.shown.value) await this.load(day);
    } catch (err) {
      if (day === this.shown.value) this.error.value = err;
    } finally {
      this.computing.value = false;
    }
  }

  /** A signed link to the shown day's file; null when no day is shown or the link was refused (see `error`). */
  async fileLink(format: BillingFormat): Promise<string | null> {
    const day = this.shown.value;
    if (day === null) return null;
    try {
      return (await this.ask<DownloadResponse>(`/v1/billing/${day}/download?format=${format}`)).url;
    } catch (err) {
      if (day === this.shown.value) this.error.value = err;
      return null;
    }
  }

  dispose(): void {
    clearTimeout(this.settling);
  }
}

/**
 * The day before `now`'s in `timeZone` (the browser's: the day a person at this desk last closed).
 * Not the date 24 hours back, which is two days back in the hour after a 23-hour day and today in the
 * last hour of a 25-hour one.
 */
export function dayBefore(now: number, timeZone: string): string {
  return addDays(localDate(now, timeZone), -1);
}

/** The first and last day of a month (`YYYY-MM`). */
export function monthDays(month: string): { from: string; to: string } {
  const [y, m] = month.split("-").map(Number) as [number, number];
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { from: `${month}-01`, to: `${month}-${String(last).padStart(2, "0")}` };
}

/** A month's billing summary (GET /v1/billing/summary): the month asked last, whatever order the answers come in. */
export class BillingMonthModel {
  /** The month in the field. */
  readonly month: Signal<string>;
  /** The month whose summary is shown (or loading). */
  readonly shown = signal<string | null>(null);
  readonly summary = signal<BillingSummary | null>(null);
  readonly error = signal<unknown>(null);
  private readonly latest = new LatestOnly();

  constructor(
    private readonly ask: Ask,
    month: string,
  ) {
    this.month = signal(month);
  }

  /** Loads `month` (the one in the field); the month on screen stays there until its new summary comes. */
  async load(month = this.month.value): Promise<void> {
    const current = this.latest.start();
    const { from, to } = monthDays(month);
    if (month !== this.shown.value) this.summary.value = null;
    this.shown.value = month;
    this.error.value = null;
    try {
      const res = await this.ask<BillingSummary>(`/v1/billing/summary?from=${from}&to=${to}`);
      if (current()) this.summary.value = res;
    } catch (err) {
      if (current()) this.error.value = err;
    }
  }

  /**
   * A day of the shown month was computed (by an admin, on the day's part of the page): its totals
   * are the month's too, so the month is read again rather than left showing the day as it was.
   */
  refreshIfShowing(day: string): void {
    const month = this.shown.value;
    if (month !== null && day.startsWith(`${month}-`)) void this.load(month);
  }

  /**
   * The month's days before `today` that are not final (never billed, or billed while a client's day
   * was open), and its days from `today` on that an admin billed already: their lines, in the totals,
   * are those days so far.
   */
  pendingDays(today: string): { past: number; pending: string[]; running: string[] } {
    const days = this.summary.value?.days ?? [];
    const past = days.filter((d) => d.date < today);
    return {
      past: past.length,
      pending: past.filter((d) => d.checked_at === null || d.open_clients > 0).map((d) => d.date),
      running: days.filter((d) => d.date >= today && d.revision > 0).map((d) => d.date),
    };
  }
}
