import type { MinuteCounts, StatusCounts } from "../schema/api.ts";
import { STATUSES } from "../schema/event.ts";
import { hourStart } from "../schema/live.ts";
import { shardName } from "./client-shards.ts";

/**
 * What a ClientCounter tells the Overview: values, not increments, so applying one twice is harmless.
 * `today` is the whole day; `minutes` are the minutes of the last hour that changed since the
 * previous rollup (all of them when the Overview primes a client), merged into what it holds.
 */
export interface ClientRollup {
  client_id: string;
  /** The client's shard that sent it (absent: 0); the Overview sums a client's shards. */
  shard?: number;
  /** The client's local date that `today` belongs to. */
  day: string;
  today: StatusCounts;
  /** Minutes with events among the last HOUR_MINUTES: the changed ones, or all of them. */
  minutes: MinuteCounts[];
  at: number;
}

/** Which Overview instance holds a rollup, and which of its rollups are in SQLite. */
export interface RollupReceipt {
  /** This instance: a restarted Overview is a new epoch holding only what was checkpointed. */
  epoch: string;
  /** The rollup's number in this epoch (0 when nothing was sent, `saved()`). */
  n: number;
  /** Rollups numbered up to this one are in SQLite. */
  savedThrough: number;
}

/**
 * Rollups go to SQLite together at most this often, one row per client that reported since, not one
 * row per rollup: a busy client reports up to ten times a second per isolate, and a write each was a
 * large share of a webhook's cost (docs/capacity.md). What a restart loses (rollups since the last
 * checkpoint) the ClientCounters resend: every rollup's receipt says which instance holds it and what
 * that instance has saved (`RollupReceipt`, client-live.ts).
 */
export const CHECKPOINT_INTERVAL_MS = 5_000;

/** A rollup added to rollups waiting to go out together, one per client shard (merged, `mergeRollup`). */
export function addRollup(waiting: Map<string, ClientRollup>, r: ClientRollup): void {
  const key = shardName(r.client_id, r.shard ?? 0);
  waiting.set(key, mergeRollup(waiting.get(key), r));
}

/**
 * A client's rollup after `update`, whatever order rollups arrive in: the ingest Worker's isolates
 * relay a client's rollups independently, one per ingest call, so an older one can land after a newer
 * one and still hold the only news of a minute. A minute's counts only grow, so each minute keeps the
 * larger count of each status from either side. `today` is the later rollup's (a new local day or a
 * time-zone change lowers it); two rollups of the same millisecond (calls the object served back to
 * back) are the same day, so theirs is the larger count of each status too. `held` itself when the
 * update adds nothing.
 */
export function mergeRollup(held: ClientRollup | undefined, update: ClientRollup): ClientRollup {
  const newer = !held || update.at > held.at;
  const base = newer ? update : held;
  const first = hourStart(base.at);
  const byMinute = new Map((held?.minutes ?? []).filter((m) => m.minute >= first).map((m) => [m.minute, m]));
  let grew = newer;
  for (const m of update.minutes) {
    if (m.minute < first) continue;
    const h = byMinute.get(m.minute);
    if (h && atLeast(h, m)) continue;
    byMinute.set(m.minute, h ? maxCounts(h, m) : m);
    grew = true;
  }
  let today = base.today;
  if (held && update.at === held.at && !atLeast(held.today, update.today)) {
    today = maxCounts(held.today, update.today);
    grew = true;
  }
  if (!grew) return held!;
  return { ...base, today, minutes: [...byMinute.values()].sort((x, y) => x.minute - y.minute) };
}

const atLeast = (a: StatusCounts, b: StatusCounts): boolean => STATUSES.every((st) => a[st] >= b[st]);

function maxCounts<T extends StatusCounts>(a: T, b: T): T {
  const out = { ...a };
  for (const st of STATUSES) out[st] = Math.max(a[st], b[st]);
  return out;
}
