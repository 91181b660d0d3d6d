import { computed, signal } from "@preact/signals";
import { OverviewLiveMessage, type OverviewRow } from "../../schema/live.ts";
import { LiveConnection } from "./live-connection.ts";

export type SortKey =
  | "name"
  | `${"minute" | "hour" | "today"}.${"sent" | "delivered" | "read" | "failed"}`
  | "deliveryRate"
  | "readRate";

const ratio = (num: number, den: number): number => (den > 0 ? num / den : -1);
const deliveryRate = (r: OverviewRow): number => ratio(r.today.delivered, r.today.sent);
const readRate = (r: OverviewRow): number => ratio(r.today.read, r.today.delivered);

/** "Loja 2" before "Loja 10", accents and case folded. */
const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function sortValue(r: OverviewRow, key: Exclude<SortKey, "name">): number {
  if (key === "deliveryRate") return deliveryRate(r);
  if (key === "readRate") return readRate(r);
  const [window, status] = key.split(".") as ["minute" | "hour" | "today", "sent" | "delivered" | "read" | "failed"];
  return r[window][status];
}

/** The overview's state: every visible client's row, kept current by `/v1/live`; search and sort. */
export class OverviewModel {
  readonly rows = signal<ReadonlyMap<string, OverviewRow>>(new Map());
  readonly search = signal("");
  readonly sort = signal<{ key: SortKey; dir: 1 | -1 }>({ key: "today.sent", dir: -1 });
  readonly connection = new LiveConnection("/v1/live", undefined, (data) => this.receive(data));

  /** Rows matching the search, in the chosen order (ties by name, so the order is stable). */
  readonly visible = computed(() => {
    const q = this.search.value.trim().toLocaleLowerCase();
    const { key, dir } = this.sort.value;
    const list = [...this.rows.value.values()].filter(
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

  /** Name of a client, once the overview has listed it. */
  nameOf(clientId: string): string | undefined {
    return this.rows.value.get(clientId)?.name;
  }

  setSort(key: SortKey): void {
    const cur = this.sort.value;
    this.sort.value = { key, dir: cur.key === key ? (cur.dir === 1 ? -1 : 1) : key === "name" ? 1 : -1 };
  }

  /** A snapshot replaces everything (a reconnect resyncs); updates replace the rows they carry. */
  receive(data: unknown): void {
    const msg = OverviewLiveMessage.parse(data);
    const next = new Map(msg.type === "snapshot" ? [] : this.rows.value);
    for (const row of msg.clients) next.set(row.client_id, row);
    this.rows.value = next;
  }
}

/** One model for the app's lifetime: search and sort survive a visit to a client page. */
export const overview = new OverviewModel();
