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

/** How an object is laid out, as `relayout` found it (for the Worker to put back if another object refused). */
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

const KEY = "reshard";

/** The object's transition, kept in its `meta` table. */
export class Reshard {
  private state: Transition | null = null;

  constructor(private readonly sql: SqlStorage) {}

  load(): void {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", KEY).toArray()[0];
    this.state = row ? (JSON.parse(row.value) as Transition) : null;
  }

  /** The transition in force at `now`, if any. */
  at(now: number): Transition | null {
    return this.state && now < this.state.until ? this.state : null;
  }

  set(state: Transition | null): void {
    if (state) this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", KEY, JSON.stringify(state));
    else this.sql.exec("DELETE FROM meta WHERE key = ?", KEY);
    this.state = state;
  }
}
