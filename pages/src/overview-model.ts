import { computed, signal } from "@preact/signals";
import { OverviewLiveMessage, type OverviewRow } from "../../schema/live.ts";
import { LiveConnection, type LiveStatus } from "./live-connection.ts";
import { OrderHold, inHeldOrder, type OrderHolder } from "./order-hold.ts";
import { deliveryRate, readRate } from "./rates.ts";
import { clearOnUserChange } from "./session.ts";

export type SortKey =
  | "name"
  | `${"minute" | "hour" | "today"}.${"sent" | "delivered" | "read" | "failed"}`
  | "deliveryRate"
  | "readRate";

/** Busiest first. */
const DEFAULT_SORT = { key: "today.sent", dir: -1 } as const;

/** "Loja 2" before "Loja 10", accents and case folded. */
const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function sortValue(r: OverviewRow, key: Exclude<SortKey, "name">): number {
  // No rate (nothing to divide by) sorts below every rate.
  if (key === "deliveryRate") return deliveryRate(r.today) ?? -1;
  if (key === "readRate") return readRate(r.today) ?? -1;
  const [window, status] = key.split(".") as ["minute" | "hour" | "today", "sent" | "delivered" | "read" | "failed"];
  return r[window][status];
}

/** The overview's state: every visible client's row, kept current by `/v1/live`; search and sort. */
export class OverviewModel {
  readonly rows = signal<ReadonlyMap<string, OverviewRow>>(new Map());
  /** Whether the first snapshot has arrived: until then no rows means "loading", not "no clients". */
  readonly loaded = signal(false);
  readonly search = signal("");
  /**
   * The rows as they were when the user paused the updates (WCAG 2.2.2: content that updates by itself
   * can be paused), null while live. The stream goes on underneath; resuming shows where it is now.
   */
  readonly paused = signal<ReadonlyMap<string, OverviewRow> | null>(null);
  readonly sort = signal<{ key: SortKey; dir: 1 | -1 }>(DEFAULT_SORT);
  readonly connection = new LiveConnection("/v1/live", undefined, (data) => this.receive(data));
  /** What the live badge says: a paused table is not live, though its stream is ("Reconnecting" still tells of the stream). */
  readonly badge = computed<LiveStatus | "paused">(() => {
    const status = this.connection.status.value;
    return this.paused.value && status === "live" ? "paused" : status;
  });

  /** Rows matching the search, in the chosen order (ties by name, so the order is stable). */
  readonly visible = computed(() => {
    const q = this.search.value.trim().toLocaleLowerCase();
    const { key, dir } = this.sort.value;
    const list = [...(this.paused.value ?? this.rows.value).values()].filter(
      (r) => q === "" || r.name.toLocaleLowerCase().includes(q) || r.client_id.toLocaleLowerCase().includes(q),
    );
    return list.sort((a, b) => {
      if (key !== "name") {
        const x = sortValue(a, key);
        const y = sortValue(b, key);
        if (x !== y) return (x - y) * dir;
      }
      return byName.compare(a.name, b.name) * (key === "name" ? dir : 1);
    });
  });

  /** Holds the rows' order while the keyboard is in them or the pointer over them (order-hold.ts). */
  readonly hold = new OrderHold();
  /** The rows as the table shows them: `visible`, in the held order while something holds it. */
  readonly shown = computed(() => inHeldOrder(this.visible.value, this.hold.order.value));

  holdOrder(by: OrderHolder): void {
    this.hold.hold(by, () => this.visible.value.map((r) => r.client_id));
  }

  releaseOrder(by: OrderHolder): void {
    this.hold.release(by);
  }

  /** Name of a client, once the overview has listed it. */
  nameOf(clientId: string): string | undefined {
    return this.rows.value.get(clientId)?.name;
  }

  setSort(key: SortKey): void {
    const cur = this.sort.value;
    this.sort.value = { key, dir: cur.key === key ? (cur.dir === 1 ? -1 : 1) : key === "name" ? 1 : -1 };
    this.hold.retake(this.visible.value.map((r) => r.client_id));
  }

  togglePause(): void {
    this.paused.value = this.paused.value ? null : this.rows.value;
  }

  /** A snapshot replaces everything (a reconnect resyncs); updates replace the rows they carry. */
  receive(data: unknown): void {
    const msg = OverviewLiveMessage.parse(data);
    const next = new Map(msg.type === "snapshot" ? [] : this.rows.value);
    for (const row of msg.clients) next.set(row.client_id, row);
    this.rows.value = next;
    this.loaded.value = true;
  }

  /** Back to a blank page for the next user: their stream, their rows, their search and sort. */
  reset(): void {
    this.connection.stop();
    this.rows.value = new Map();
    this.loaded.value = false;
    this.search.value = "";
    this.sort.value = DEFAULT_SORT;
    this.paused.value = null;
    this.hold.clear();
  }
}

/** One model per signed-in user: search and sort survive a visit to a client page, not a sign-out. */
export const overview = new OverviewModel();
clearOnUserChange(() => overview.reset());
