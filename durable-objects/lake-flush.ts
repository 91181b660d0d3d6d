import { DAY_MS, utcDate } from "../schema/time.ts";
import { OCCURRED_AT, type EventRow } from "../workers/lake/columns.ts";
import { partKey } from "../workers/lake/layout.ts";
import { encodeParquet, ROW_GROUP_ROWS } from "../workers/lake/parquet-writer.ts";
import { FLUSHED_THROUGH_KEY, flushedThrough, type Outbox } from "./outbox.ts";
import { FLUSH_INTERVAL_MS, FLUSH_SPREAD_MS } from "./lake-schedule.ts";
import { aggregatesThrough, type Track } from "./pending-aggregates.ts";
import { logLine } from "../workers/log.ts";
import { within } from "../workers/concurrency.ts";

/** Rows per flushed batch: one row group, so a flush holds one group's worth of rows in memory. */
const FLUSH_BATCH_ROWS = ROW_GROUP_ROWS;
/** Batches one alarm writes before yielding (and re-arming at once when more are waiting). */
const BATCHES_PER_ALARM = 8;
/** Backoff after a failed flush: doubles from 5 s up to 5 minutes; it never gives up. */
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 300_000;
/**
 * How long one file's put may take before the flush counts it failed and retries with backoff. A
 * put that never answers would otherwise hold this flush, and every flush chained behind it (the
 * alarm's, an admin's, a report's), for as long as the object lives: a file of one row group is a
 * few MB, seconds even on a slow link. The put left running writes the same bytes under the same
 * key as the retry, so landing late it changes nothing.
 */
const PUT_TIMEOUT_MS = 60_000;
/** Meta key of the outbox range being flushed, so a retry writes exactly the same objects. */
const PENDING_RANGE_KEY = "lake_flush_range";
/**
 * Moves a ClientCounter's outbox to the R2 lake as Parquet. Rows leave the outbox only after every
 * object of their range is written; the range is persisted first, so a retry after any failure
 * rewrites the same keys with the same rows: nothing is lost and nothing is duplicated.
 */
export class LakeFlush {
  private alarmAt: number | null = null;
  /**
   * When the outbox is due for the lake; later than `alarmAt` when the owner asked to be woken
   * sooner for other work (`wakeAt`), which then leaves the outbox alone: a flush at every such wake
   * would write a small file each time.
   */
  private flushAt: number | null = null;
  private pendingRows = 0;
  private failures = 0;
  private running: Promise<unknown> = Promise.resolve();
  /** FLUSH_INTERVAL_MS less this object's share of FLUSH_SPREAD_MS. */
  private readonly flushDelayMs: number;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly outbox: Outbox,
    /** Where files go; replaced only by fault-injection tests. */
    public bucket: R2Bucket,
    private readonly clientId: () => string | null,
    /** Accounts for the rows this writes (the object reports them with its next ingest). */
    private readonly track: Track,
    /** Runs a write as one transaction, restoring the object's in-memory state if it rolls back. */
    private readonly transact: (write: () => void) => void,
    /** Brings the counters up to date with the outbox; called before written outbox rows are marked flushed. */
    private readonly absorbOutbox: () => void,
  ) {
    this.flushDelayMs = FLUSH_INTERVAL_MS - (parseInt(ctx.id.toString().slice(-6), 16) % FLUSH_SPREAD_MS);
    ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = await ctx.storage.getAlarm();
      this.pendingRows = outbox.detailRowsAfter(flushedThrough(ctx.storage.sql));
      // Which work a stored alarm was for went with the last instance: flushing at it is the safe guess.
      this.flushAt = this.pendingRows > 0 ? this.alarmAt : null;
    });
  }

  /**
   * Arms the alarm after an ingest committed `rows` new detail rows: at most a minute away, or now
   * when a batch is ready. Writes storage only when that moves the alarm earlier, so the hot path
   * normally costs nothing here.
   */
  noteIngested(rows: number): void {
    if (rows === 0) return;
    this.pendingRows += rows;
    this.flushBy(this.nextFlushAt());
  }

  /**
   * The owner's alarm began: the stored alarm is spent from here on, whatever the rest of that run
   * does, so the next `arm` sets one. Told before the owner's other alarm work: a run that throws
   * before the flush is retried by the runtime a few times and then dropped, and an `alarmAt` kept
   * from it would stop every later `arm` until the object restarted. Returns the flush's part of the
   * run (`alarm`).
   */
  alarmBegan(): () => Promise<void> {
    const wakeOnly = this.alarmAt !== null && this.flushAt !== null && this.alarmAt < this.flushAt && Date.now() < this.flushAt;
    this.alarmAt = null;
    return () => this.alarm(wakeOnly);
  }

  /**
   * The alarm: flush a few batches; re-arm with backoff on failure, at once when more are waiting.
   * An alarm that only woke the owner sooner than the flush was due re-arms for the flush instead.
   */
  private async alarm(wakeOnly: boolean): Promise<void> {
    if (wakeOnly) {
      this.arm(this.flushAt!);
      return;
    }
    this.flushAt = null;
    try {
      await this.flush(BATCHES_PER_ALARM);
      this.failures = 0;
      if (this.pendingRows > 0) this.flushBy(this.nextFlushAt());
    } catch (err) {
      this.failures += 1;
      const delay = Math.min(RETRY_BASE_MS * 2 ** (this.failures - 1), RETRY_MAX_MS);
      logLine("error", "lake_flush_failed", { client_id: this.clientId(), failures: this.failures, retry_in_ms: delay }, err);
      this.flushBy(Date.now() + delay);
    }
  }

  /** Whether the alarm will flush by `at` anyway: the owner's other alarm work can then wait for it. */
  flushDueBy(at: number): boolean {
    return this.flushAt !== null && this.flushAt <= at;
  }

  /**
   * Flushes up to `maxBatches` batches (all by default) of the calls accepted before this one;
   * returns the keys written. Calls that arrive meanwhile wait for the next flush: a report's flush
   * would otherwise chase a steady stream, a file per round, and never answer.
   */
  flush(maxBatches = Number.POSITIVE_INFINITY): Promise<string[]> {
    const through = this.outbox.lastSeq();
    // One flush at a time: the alarm and an admin flush must not write the same range twice at once.
    const run = this.running.then(async () => {
      const keys: string[] = [];
      for (let i = 0; i < maxBatches; i++) {
        const written = await this.flushBatch(through);
        if (written === null) break;
        keys.push(...written);
      }
      return keys;
    });
    this.running = run.catch(() => undefined);
    return run;
  }

  /** What waits for the lake, how many flushes in a row failed, and when the alarm comes next. */
  state(): { backlogEvents: number; failures: number; nextAlarmAt: number | null } {
    return { backlogEvents: this.pendingRows, failures: this.failures, nextAlarmAt: this.alarmAt };
  }

  /** Runs the alarm (and the owner's other alarm work) no later than `at`, whatever the outbox holds. */
  wakeAt(at: number): void {
    this.arm(at);
  }

  /** At once when a batch is ready, else this object's flush delay from now. */
  private nextFlushAt(): number {
    const now = Date.now();
    return this.pendingRows >= FLUSH_BATCH_ROWS ? now : now + this.flushDelayMs;
  }

  private flushBy(at: number): void {
    this.flushAt = this.flushAt === null ? at : Math.min(this.flushAt, at);
    this.arm(at);
  }

  private arm(at: number): void {
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  /** Writes the next outbox range up to seq `through`; null when none waits. */
  private async flushBatch(through: number): Promise<string[] | null> {
    const clientId = this.clientId();
    const range = this.nextRange(through);
    if (!clientId || !range) return null;
    const [first, last] = range;
    // Grouped by UTC day number; the date text is made once per partition, not once per row.
    const byDay = new Map<number, EventRow[]>();
    let rows = 0;
    for (const r of this.outbox.rows(first, last)) {
      for (const row of JSON.parse(r.rows) as EventRow[]) {
        const day = Math.floor((row[OCCURRED_AT] as number) / DAY_MS);
        let list = byDay.get(day);
        if (!list) byDay.set(day, (list = []));
        list.push(row);
        rows += 1;
      }
    }
    const keys: string[] = [];
    for (const [day, list] of [...byDay].sort(([a], [b]) => a - b)) {
      // Sorted by occurred_at so row-group statistics are tight for the report's time filter.
      list.sort((a, b) => (a[OCCURRED_AT] as number) - (b[OCCURRED_AT] as number));
      const key = partKey(clientId, utcDate(day * DAY_MS), first, last);
      const put = this.bucket.put(key, encodeParquet(list), {
        httpMetadata: { contentType: "application/vnd.apache.parquet" },
        customMetadata: { rows: String(list.length) },
      });
      await within(put, PUT_TIMEOUT_MS, `the lake put of ${key}`);
      keys.push(key);
    }
    // The rows are in the lake. At the storage limit the writes below are refused (the counters'
    // upsert first), so a table they emptied goes first, on its own, when the counters already hold
    // its calls: the space it frees lets them through. Should they still fail, the retry of the
    // range finds none of its rows in the outbox and writes no file again.
    let dropped = false;
    if (aggregatesThrough(this.ctx.storage.sql) >= last) {
      this.transact(() => {
        dropped = this.outbox.markFlushed(last, this.track);
      });
    }
    if (dropped) {
      this.pendingRows = Math.max(0, this.pendingRows - rows);
      rows = 0;
    }
    this.transact(() => {
      const sql = this.ctx.storage.sql;
      this.absorbOutbox();
      this.outbox.markFlushed(last, this.track);
      this.track(sql.exec("DELETE FROM meta WHERE key = ?", PENDING_RANGE_KEY));
      this.track(sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", FLUSHED_THROUGH_KEY, String(last)));
    });
    this.pendingRows = Math.max(0, this.pendingRows - rows);
    return keys;
  }

  /** The range being retried, else the oldest outbox rows up to `through` and FLUSH_BATCH_ROWS (persisted first). */
  private nextRange(through: number): [number, number] | null {
    const sql = this.ctx.storage.sql;
    const pending = sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", PENDING_RANGE_KEY).toArray()[0];
    if (pending) return JSON.parse(pending.value) as [number, number];
    let first: number | null = null;
    let last = 0;
    let rows = 0;
    for (const r of this.outbox.sealedAfter(flushedThrough(sql), through, this.track)) {
      if (first !== null && rows + r.n > FLUSH_BATCH_ROWS) break;
      first ??= r.seq;
      last = r.seq;
      rows += r.n;
    }
    if (first === null) return null;
    this.track(sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", PENDING_RANGE_KEY, JSON.stringify([first, last])));
    return [first, last];
  }
}
