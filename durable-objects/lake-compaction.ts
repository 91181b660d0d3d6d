import { closedDays } from "../workers/lake/closed-days.ts";
import { compactionTotals, compactPartition, type CompactionResult } from "../workers/lake/compaction.ts";
import { NotParquet } from "../workers/lake/reader.ts";
import { TookTooLong, within } from "../workers/concurrency.ts";
import { logLine } from "../workers/log.ts";
import type { LakeFlush } from "./lake-flush.ts";
import type { LakeTurns } from "./lake-turns.ts";
import type { Track } from "./pending-aggregates.ts";

/** Meta key of the compaction asked for and not done yet (`Asked`). */
const ASKED_KEY = "lake_compaction";
/**
 * Backoff after a failed compaction: doubles from 5 minutes up to an hour. A file that is not
 * Parquet fails every try until an operator removes it, and each try may read ~1,000 files.
 */
const RETRY_BASE_MS = 300_000;
const RETRY_MAX_MS = 3_600_000;
/**
 * How long the alarm waits for its compaction. The runtime runs an object's next alarm, its next lake
 * flush, only once this one returns, so an R2 call of the compaction that never answers would hold
 * the flush (and, chained in `running`, every later alarm) for as long as the object lives. A healthy
 * compaction of a busy day (~1,000 GETs) ends well within it; one still running goes on in turn with
 * the next runs, and what was asked stays stored until done.
 */
const ALARM_WAIT_MS = 300_000;

interface Asked {
  client_id: string;
  days: string[];
  /** Failed tries in a row, and when the next is due: the alarm wakes for the flush in between too. */
  failures: number;
  retry_at: number;
}

/**
 * An operator's compaction of one day: the files written, or the file that is not Parquet (answered,
 * not thrown: an error's class does not cross RPC, and the operator must be told which file to remove).
 */
export type CompactedNow = { compacted: CompactionResult[] } | { not_parquet: string };

/**
 * The compaction of a client's closed UTC days (workers/lake/compaction.ts), asked of its shard 0 by
 * the nightly cron and done in that object's alarm: the ~1,000 GETs of a busy client's day fall in an
 * invocation of its own instead of all clients' in the cron's one. What was asked is stored until
 * done, so an eviction or a failure does not lose it; a day that keeps failing is dropped once it
 * leaves the compaction window (no later night would ask for it either).
 */
export class LakeCompaction {
  /**
   * Whether a request is stored, once read: the flush alarms (~1.2 a client-minute) find none nearly
   * always, and then read nothing.
   */
  private waiting: boolean | null = null;

  constructor(
    private readonly sql: SqlStorage,
    private readonly lake: LakeFlush,
    private readonly track: Track,
    private readonly turns: LakeTurns,
  ) {}

  /**
   * Adds `days` to what waits, due now, and wakes the alarm. The backoff starts afresh: a day that
   * first fails tonight is retried in minutes, not after the hour that last night's failures built up.
   */
  ask(clientId: string, days: string[]): void {
    const waiting = this.stored();
    const all = new Set([...(waiting?.asked.days ?? []), ...days]);
    this.store({ client_id: clientId, days: [...all].sort(), failures: 0, retry_at: 0 });
    this.lake.wakeAt(Date.now());
  }

  /**
   * The alarm's part: compacts each waiting day when due; the days that failed wait for a retry. One
   * run at a time, with the erasures' too (durable-objects/lake-turns.ts).
   * Waits for the run at most ALARM_WAIT_MS (`lake_compaction_slow`), so the object's next flush alarm can come.
   */
  async run(): Promise<void> {
    try {
      await within(this.turns.inTurn(() => this.compactWaiting()), ALARM_WAIT_MS, "the compaction");
    } catch (err) {
      // A failure of its own still fails the alarm, as before.
      if (!(err instanceof TookTooLong)) throw err;
      const asked = this.stored()?.asked;
      logLine("warn", "lake_compaction_slow", { client_id: asked?.client_id ?? null, days: asked?.days ?? [], waited_ms: ALARM_WAIT_MS });
    }
  }

  /**
   * Compacts `date` now (`POST /v1/admin/lake/compact`), in turn with the alarm's runs. Done, the day
   * no longer waits for a retry; failed, what waits stays as it was. R2's failures throw: a retry may
   * succeed.
   */
  compactNow(clientId: string, date: string): Promise<CompactedNow> {
    return this.turns.inTurn(async () => {
      const before = this.stored()?.text;
      let compacted: CompactionResult[];
      try {
        compacted = await compactPartition(this.lake.bucket, clientId, date);
      } catch (err) {
        if (err instanceof NotParquet) return { not_parquet: err.key };
        throw err;
      }
      logDone(clientId, compacted, 0);
      // Asked again meanwhile: that ask stands, as it may be for a file flushed after the listing.
      if (this.stored()?.text === before) this.forget(date);
      return { compacted };
    });
  }

  private async compactWaiting(): Promise<void> {
    if (this.waiting === false) return;
    const taken = this.stored();
    if (!taken) return;
    if (Date.now() < taken.asked.retry_at) {
      // Woken for the flush: the retry's own wake went with this alarm.
      this.lake.wakeAt(taken.asked.retry_at);
      return;
    }
    const { asked } = taken;
    const compacted: CompactionResult[] = [];
    const failed: string[] = [];
    let error: unknown;
    for (const date of asked.days) {
      try {
        compacted.push(...(await compactPartition(this.lake.bucket, asked.client_id, date)));
      } catch (err) {
        failed.push(date);
        error ??= err;
      }
    }
    logDone(asked.client_id, compacted, failed.length);
    const now = Date.now();
    const left = failed.filter((d) => d >= closedDays(now).at(-1)!);
    const delay = Math.min(RETRY_BASE_MS * 2 ** asked.failures, RETRY_MAX_MS);
    // A line for the days retried and one for those given up (out of the window): `retry_in_ms` says which.
    const givenUp = failed.filter((d) => !left.includes(d));
    if (left.length > 0) logLine("error", "lake_job_failed", { client_id: asked.client_id, days: left, retry_in_ms: delay }, error);
    if (givenUp.length > 0) logLine("error", "lake_job_failed", { client_id: asked.client_id, days: givenUp, retry_in_ms: null }, error);
    // Asked again meanwhile: that ask stands as made (it woke the alarm; a compacted day costs a listing).
    if (this.stored()?.text !== taken.text) return;
    if (left.length === 0) {
      this.clear();
      return;
    }
    this.store({ client_id: asked.client_id, days: left, failures: asked.failures + 1, retry_at: now + delay });
    this.lake.wakeAt(now + delay);
  }

  /** Drops `date` from what waits for a retry: it was compacted meanwhile. */
  private forget(date: string): void {
    const waiting = this.stored();
    if (!waiting?.asked.days.includes(date)) return;
    const days = waiting.asked.days.filter((d) => d !== date);
    if (days.length > 0) this.store({ ...waiting.asked, days });
    else this.clear();
  }

  private stored(): { text: string; asked: Asked } | null {
    const text = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", ASKED_KEY).toArray()[0]?.value;
    this.waiting = text !== undefined;
    return text === undefined ? null : { text, asked: JSON.parse(text) as Asked };
  }

  private store(asked: Asked): void {
    this.track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", ASKED_KEY, JSON.stringify(asked)));
    this.waiting = true;
  }

  private clear(): void {
    this.track(this.sql.exec("DELETE FROM meta WHERE key = ?", ASKED_KEY));
    this.waiting = false;
  }
}

function logDone(clientId: string, compacted: CompactionResult[], failedDays: number): void {
  // Every client is asked every night, most with nothing to compact: a line for each would be noise.
  if (compacted.length === 0 && failedDays === 0) return;
  const { files, rows, replaced } = compactionTotals(compacted);
  logLine("info", "lake_compaction_done", { client_id: clientId, files: files.length, rows, replaced, failed_days: failedDays });
}
