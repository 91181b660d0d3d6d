import type { Erasure } from "../schema/api.ts";
import { TookTooLong, within } from "../workers/concurrency.ts";
import type { CompactionResult } from "../workers/lake/compaction.ts";
import { erasePartition, lakeDays } from "../workers/lake/erasure.ts";
import { logLine } from "../workers/log.ts";
import type { LakeFlush } from "./lake-flush.ts";
import type { LakeTurns } from "./lake-turns.ts";
import type { Track } from "./pending-aggregates.ts";

/** Meta keys of erasures: `erasure:<id>`, one row each. */
const KEY_PREFIX = "erasure:";
/**
 * Days one alarm run reads: a busy client-day is ~1,000 GETs when not compacted, so a client with
 * 400 days of lake takes ~25 runs, each short enough that the next lake flush is not held up for long.
 */
const DAYS_PER_RUN = 16;
/** Backoff after a failed try: doubles from a minute up to an hour; an erasure never gives up. */
const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 3_600_000;
/** How long the alarm waits for a run, as for a compaction (durable-objects/lake-compaction.ts). */
const ALARM_WAIT_MS = 300_000;
/** Erasures done that the object still answers about; older ones are forgotten. */
const KEPT_DONE = 100;

/** An erasure as the object keeps it: the answer's fields, and what the job needs until it is done. */
interface Stored extends Erasure {
  /** The number or BSUID: held only while pending, and never logged. */
  recipient: string | null;
  /** The client's shard count when asked: every shard's outbox is flushed before the lake is read. */
  shards: number;
  /** The lake days left to read, oldest first; null until the outboxes are flushed. */
  days: string[] | null;
  retry_at: number;
}

/**
 * A recipient's erasure from one client's lake (docs/privacy.md), asked of the client's shard 0 and
 * done in its alarm, in turn with the compactions (durable-objects/lake-turns.ts): first every
 * shard's outbox is flushed, so rows not in the lake yet are in it when it is read; then the client's
 * days are listed and each partition holding the recipient is rewritten without its rows
 * (workers/lake/erasure.ts), DAYS_PER_RUN days a run, the progress stored after each day, so an
 * eviction or a failure loses at most a day's work, which the next try redoes harmlessly.
 */
export class RecipientErasure {
  /** Whether an erasure is pending, once read: the flush alarms then read nothing (see LakeCompaction). */
  private waiting: boolean | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly lake: LakeFlush,
    private readonly track: Track,
    private readonly turns: LakeTurns,
    /** Flushes the outbox of each of the client's `shards` shards to the lake. */
    private readonly flushShards: (clientId: string, shards: number) => Promise<void>,
  ) {}

  /**
   * Stores the erasure of `recipient` and wakes the alarm; the erasure of the same recipient still
   * pending instead, when there is one (an ask repeated is one job).
   */
  ask(clientId: string, shards: number, recipient: string, now: number): Erasure {
    const pending = this.all().find((e) => e.status === "pending" && e.recipient === recipient);
    if (pending) return answer(pending);
    const erasure: Stored = {
      id: crypto.randomUUID(),
      client_id: clientId,
      status: "pending",
      asked_at: now,
      done_at: null,
      days_left: null,
      files_rewritten: 0,
      rows_removed: 0,
      failures: 0,
      recipient,
      shards,
      days: null,
      retry_at: 0,
    };
    this.store(erasure);
    this.lake.wakeAt(now);
    return answer(erasure);
  }

  /** The erasure `id`, or null when the object never had it or has forgotten it (KEPT_DONE). */
  get(id: string): Erasure | null {
    const text = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", KEY_PREFIX + id).toArray()[0]?.value;
    return text === undefined ? null : answer(JSON.parse(text) as Stored);
  }

  /**
   * The alarm's part: the oldest pending erasure that is due goes on by up to DAYS_PER_RUN days. With
   * none pending it returns at once, not in turn: a compaction still running from this alarm (past
   * its own wait) would hold the alarm as long again.
   */
  async run(): Promise<void> {
    if (!this.anyPending()) return;
    try {
      await within(this.turns.inTurn(() => this.eraseDue()), ALARM_WAIT_MS, "the erasure");
    } catch (err) {
      if (!(err instanceof TookTooLong)) throw err;
      // It goes on in turn with the next runs; its progress is stored day by day.
      logLine("warn", "erasure_slow", { waited_ms: ALARM_WAIT_MS });
    }
  }

  private anyPending(): boolean {
    this.waiting ??= this.all().some((e) => e.status === "pending");
    return this.waiting;
  }

  private async eraseDue(): Promise<void> {
    const pending = this.all().filter((e) => e.status === "pending");
    this.waiting = pending.length > 0;
    const now = Date.now();
    const due = pending.find((e) => e.retry_at <= now);
    if (!due) {
      // Woken for the flush: each retry's own wake went with this alarm.
      if (pending.length > 0) this.lake.wakeAt(Math.min(...pending.map((e) => e.retry_at)));
      return;
    }
    try {
      await this.goOn(due);
    } catch (err) {
      due.failures += 1;
      const delay = Math.min(RETRY_BASE_MS * 2 ** (due.failures - 1), RETRY_MAX_MS);
      due.retry_at = Date.now() + delay;
      this.store(due);
      logLine("error", "erasure_failed", { client_id: due.client_id, erasure_id: due.id, days_left: due.days_left, failures: due.failures, retry_in_ms: delay }, err);
      this.lake.wakeAt(due.retry_at);
      return;
    }
    // More days, or other erasures: the next run comes at once, after the flush alarm's turn.
    if (due.status === "pending" || pending.length > 1) this.lake.wakeAt(Date.now());
  }

  /** Flushes and lists first, then erases up to DAYS_PER_RUN days, storing after each step. */
  private async goOn(erasure: Stored): Promise<void> {
    const recipient = erasure.recipient!;
    if (erasure.days === null) {
      await this.flushShards(erasure.client_id, erasure.shards);
      erasure.days = await lakeDays(this.lake.bucket, erasure.client_id);
      erasure.days_left = erasure.days.length;
      this.store(erasure);
    }
    // Each file counted as soon as it is written: a retry of the day after its deletes failed rewrites nothing.
    const rewritten = ({ dropped }: CompactionResult) => {
      Object.assign(erasure, { files_rewritten: erasure.files_rewritten + 1, rows_removed: erasure.rows_removed + dropped });
      this.store(erasure);
    };
    for (let n = 0; n < DAYS_PER_RUN && erasure.days.length > 0; n++) {
      await erasePartition(this.lake.bucket, erasure.client_id, erasure.days[0]!, recipient, rewritten);
      erasure.days = erasure.days.slice(1);
      Object.assign(erasure, { days_left: erasure.days.length, failures: 0, retry_at: 0 });
      this.store(erasure);
    }
    if (erasure.days.length > 0) return;
    Object.assign(erasure, { status: "done", done_at: Date.now(), recipient: null });
    this.store(erasure);
    this.forgetOldest();
    logLine("info", "erasure_done", {
      client_id: erasure.client_id,
      erasure_id: erasure.id,
      files_rewritten: erasure.files_rewritten,
      rows_removed: erasure.rows_removed,
      took_ms: erasure.done_at! - erasure.asked_at,
    });
  }

  private all(): Stored[] {
    return this.sql
      .exec<{ value: string }>("SELECT value FROM meta WHERE key >= ? AND key < ?", KEY_PREFIX, `${KEY_PREFIX}\uffff`)
      .toArray()
      .map((r) => JSON.parse(r.value) as Stored)
      .sort((a, b) => a.asked_at - b.asked_at);
  }

  private store(erasure: Stored): void {
    this.track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", KEY_PREFIX + erasure.id, JSON.stringify(erasure)));
    if (erasure.status === "pending") this.waiting = true;
  }

  /** Keeps the answers of the KEPT_DONE latest erasures done. */
  private forgetOldest(): void {
    const done = this.all().filter((e) => e.status === "done");
    for (const e of done.slice(0, Math.max(0, done.length - KEPT_DONE))) this.track(this.sql.exec("DELETE FROM meta WHERE key = ?", KEY_PREFIX + e.id));
  }
}

/** The answer's fields of a stored erasure: never the recipient. */
function answer({ id, client_id, status, asked_at, done_at, days_left, files_rewritten, rows_removed, failures }: Stored): Erasure {
  return { id, client_id, status, asked_at, done_at, days_left, files_rewritten, rows_removed, failures };
}
