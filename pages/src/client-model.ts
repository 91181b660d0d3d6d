import { computed, signal } from "@preact/signals";
import type { MinuteCounts, StatusCounts } from "../../schema/api.ts";
import { STATUSES } from "../../schema/event.ts";
import { ClientLiveMessage } from "../../schema/live.ts";
import { MINUTE_MS, localDate, minuteOf } from "../../schema/time.ts";
import { ApiFailure, api } from "./api.ts";
import { clientInfo } from "./client-directory.ts";
import { LiveConnection } from "./live-connection.ts";

/** Hours of per-minute history on the client page. */
export const CHART_HOURS = 3;
/** How far ahead of Cloudflare's the browser's clock may be (or a message late) for the client's midnight still to be seen. */
const CLOCK_SLACK_MS = 60_000;
/** Pause before reading the history again after a read that got no answer (a 5xx, no network). */
export const HISTORY_RETRY_MS = 5_000;

/** One client's page: per-minute history (REST) kept moving by `/v1/clients/:id/live`. */
export class ClientModel {
  readonly minutes = signal<ReadonlyMap<number, MinuteCounts>>(new Map());
  readonly today = signal<StatusCounts | null>(null);
  /** Why the history could not be loaded (an ApiFailure or a network error). */
  readonly error = signal<unknown>(null);
  /** The current minute; ticks so the chart slides even when nothing happens. */
  readonly now = signal(minuteOf(Date.now()));
  readonly connection: LiveConnection;
  private clock: ReturnType<typeof setInterval> | undefined;
  /** Minutes the stream reported since its last snapshot: newer than any history answer. */
  private streamed = new Map<number, MinuteCounts>();
  /** When the stream last said what today is (null before it has, or once a new day asked again). */
  private todaySaidAt: number | null = null;
  /**
   * Bumped by every history read and by stop(): a reconnect's snapshot asks again, and the answer to
   * a read asked before it (slower, or failed) is older than the one that may already be on screen.
   */
  private historyAsked = 0;
  private historyRetry: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly clientId: string,
    /** The client's time zone, whose day `today` counts (unknown until the client directory answers). */
    private readonly timezone: () => string | undefined = () => clientInfo(clientId)?.timezone,
  ) {
    this.connection = new LiveConnection(`/v1/clients/${encodeURIComponent(clientId)}/live`, clientId, (d) => this.receive(d));
  }

  /** Columns for uPlot: minute starts (s) and one series per status, zeros where nothing happened. */
  readonly series = computed(() => {
    const end = this.now.value;
    const count = CHART_HOURS * 60;
    const xs: number[] = [];
    const ys = STATUSES.map(() => [] as number[]);
    for (let i = count - 1; i >= 0; i--) {
      const minute = end - i * MINUTE_MS;
      const m = this.minutes.value.get(minute);
      xs.push(minute / 1000);
      STATUSES.forEach((s, j) => ys[j]!.push(m ? m[s] : 0));
    }
    return { xs, ys };
  });

  start(): void {
    this.clock = setInterval(() => this.tick(), 5_000);
    this.connection.start();
  }

  /**
   * The chart's clock, and the client's midnight: an unsharded client's object sends nothing while
   * the client is quiet, so the day that ended would stay as today until its next event; a fresh
   * snapshot says what the new day holds.
   */
  private tick(): void {
    const now = Date.now();
    this.now.value = minuteOf(now);
    const timezone = this.timezone();
    const saidAt = this.todaySaidAt;
    if (timezone === undefined || saidAt === null) return;
    // The object counts today by its own clock: with the browser's ahead, the snapshot asked at the
    // browser's midnight is still of the day that ended. So once more, a little later, for a `today`
    // heard just after midnight.
    const turned = (slack: number) => localDate(saidAt - slack, timezone) !== localDate(now - slack, timezone);
    if (!turned(0) && !turned(CLOCK_SLACK_MS)) return;
    this.todaySaidAt = null;
    this.connection.start();
  }

  stop(): void {
    clearInterval(this.clock);
    clearTimeout(this.historyRetry);
    this.historyAsked += 1;
    this.connection.stop();
  }

  /** Snapshot: reload the history, then lay the streamed minutes over it. Update: replace the minutes it carries. */
  receive(data: unknown): void {
    const msg = ClientLiveMessage.parse(data);
    this.today.value = msg.today;
    this.todaySaidAt = Date.now();
    if (msg.type === "snapshot") this.streamed = new Map();
    for (const m of msg.minutes) this.streamed.set(m.minute, m);
    this.merge(msg.minutes);
    if (msg.type === "snapshot") void this.loadHistory();
  }

  private async loadHistory(): Promise<void> {
    clearTimeout(this.historyRetry);
    const asked = ++this.historyAsked;
    const to = minuteOf(Date.now()) + MINUTE_MS;
    const from = to - CHART_HOURS * 60 * MINUTE_MS;
    const q = new URLSearchParams({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    try {
      const res = await api<{ minutes: MinuteCounts[] }>(`/v1/clients/${encodeURIComponent(this.clientId)}/counters?${q}`);
      if (asked !== this.historyAsked) return;
      // History never overwrites a minute the stream reported (the snapshot's, or an update's that came
      // while the history was on its way): those are newer.
      this.minutes.value = new Map(res.minutes.map((m) => [m.minute, m]));
      this.merge([...this.streamed.values()]);
      this.error.value = null;
    } catch (err) {
      if (asked !== this.historyAsked) return;
      this.error.value = err;
      // The stream may stay up for hours with no new snapshot to ask again, and the snapshot holds
      // only the last hour: the chart's earlier hours would read as zeros until the page is reloaded.
      if (!(err instanceof ApiFailure) || err.status >= 500) this.historyRetry = setTimeout(() => void this.loadHistory(), HISTORY_RETRY_MS);
    }
  }

  private merge(minutes: MinuteCounts[]): void {
    const next = new Map(this.minutes.value);
    for (const m of minutes) next.set(m.minute, m);
    this.minutes.value = next;
  }
}
