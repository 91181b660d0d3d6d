import { EVENT_RETENTION_MONTHS } from "./client-counter-tables.ts";

/**
 * A client that grows from `previous` shards while it has events: until `until`, a message this
 * shard does not know may have had statuses routed by the previous count, to another shard, which
 * then keeps it (ClientCounter `ingestResharded`). See `transitionFrom` for how long.
 */
export interface Transition {
  previous: number;
  until: number;
}

/** How an object is laid out: the count it serves and the transition in force. */
export interface LayoutState {
  layout: number | null;
  transition: Transition | null;
}

/** The first instant at which the event tables of `at`'s UTC month are past retention. */
function tablesExpire(at: number): number {
  const d = new Date(at);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + EVENT_RETENTION_MONTHS + 1, 1);
}

/**
 * The transition of a change made at `now`, computed once for all the client's objects. The old
 * shards remember statuses from before the change until the event tables of its month expire, and
 * the statuses forwarded to them until then as long again: the transition lasts until those expire
 * too (5–6 months). A message whose statuses go on arriving after that, each within retention of the
 * one before, can be stored a second time in its new shard; an unsharded client would still have
 * remembered it.
 */
export function transitionFrom(previous: number, now: number): Transition {
  return { previous, until: tablesExpire(tablesExpire(now)) };
}

/** A JSON value kept under `key` in the object's `meta` table, mirrored in memory. */
class MetaValue<T> {
  protected value: T | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly key: string,
  ) {}

  load(): void {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", this.key).toArray()[0];
    this.value = row ? (JSON.parse(row.value) as T) : null;
  }

  set(value: T | null): void {
    if (value) this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", this.key, JSON.stringify(value));
    else this.sql.exec("DELETE FROM meta WHERE key = ?", this.key);
    this.value = value;
  }
}

/** The object's transition, kept in its `meta` table. */
export class Reshard extends MetaValue<Transition> {
  constructor(sql: SqlStorage) {
    super(sql, "reshard");
  }

  /** The transition in force at `now`, if any. */
  at(now: number): Transition | null {
    return this.value && now < this.value.until ? this.value : null;
  }
}

/**
 * The change of the shard count that made the object's layout, what the layout was before it, and
 * every change that has agreed to the layout since (`holders`): two admins asking for the same count
 * agree to one layout, and the one whose change fails must not put back what the other's still
 * stands on. The layout goes back only when the last of them lets go.
 */
interface LayoutChange {
  prior: LayoutState;
  holders: string[];
}

/** The object's `LayoutChange`, kept in its `meta` table. */
export class LayoutChanges extends MetaValue<LayoutChange> {
  constructor(sql: SqlStorage) {
    super(sql, "layout_change");
  }

  /** `change` made the layout from `prior`. */
  made(change: string, prior: LayoutState): void {
    this.set({ prior, holders: [change] });
  }

  /** `change` agreed to the layout as it is. */
  joined(change: string): void {
    if (this.value && !this.value.holders.includes(change)) this.set({ ...this.value, holders: [...this.value.holders, change] });
  }

  /** `change` did not go through: the layout to put back once no change holds it any longer (null: keep it). */
  release(change: string): LayoutState | null {
    const state = this.value;
    if (!state?.holders.includes(change)) return null;
    const holders = state.holders.filter((h) => h !== change);
    this.set(holders.length > 0 ? { ...state, holders } : null);
    return holders.length > 0 ? null : state.prior;
  }
}
