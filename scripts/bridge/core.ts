import { INGEST_MAX_BYTES, INGEST_MAX_RECORDS } from "../../schema/api.ts";
import type { PostBatch } from "./ingest-client.ts";
import { backoffDelay, type BackoffOptions, type Verdict } from "./policy.ts";
import { KeyBuffers } from "./key-buffers.ts";
import type { DeadLetter, DeadLetterPort, SourceBatch, SourceRecord } from "./ports.ts";
import { Progress } from "./progress.ts";

/** The endpoint refuses more than INGEST_MAX_RECORDS records or INGEST_MAX_BYTES per request; stay below both. */
export const MAX_RECORDS_PER_POST = INGEST_MAX_RECORDS;
const DEFAULT_MAX_BYTES = INGEST_MAX_BYTES - 1024 * 1024;

export interface BridgeOptions {
  post: PostBatch;
  deadLetters: DeadLetterPort;
  /** Records per POST. */
  maxBatchRecords?: number;
  /** UTF-8 bytes per POST body. */
  maxBatchBytes?: number;
  /** How long partial batches wait for more records (from any partition) before they are sent. */
  lingerMs?: number;
  /** Requests in flight at once (each with its retries). */
  maxInFlight?: number;
  /**
   * How often the group hears from this member while batches are being handled. kafkajs heartbeats
   * only between batches, so a POST, a backoff or a wait for a request slot would otherwise let the
   * session time out.
   */
  heartbeatMs?: number;
  backoff?: BackoffOptions;
  /** Waits `ms` or until `signal` aborts (stop); injectable so tests can record delays instead of waiting. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Called once when a response says the bridge is misconfigured (401, 404, ...). */
  onFatal?: (error: BridgeFatal) => void;
}

/** The endpoint said every request will fail the same way (bad key, wrong URL). */
export class BridgeFatal extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(`ingest endpoint answered ${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

type Outcome = "done" | "abandoned";

/** A record waiting in its key's buffer or in flight, with the batch it came from. */
interface Pending {
  record: SourceRecord;
  text: string;
  bytes: number;
  batch: SourceBatch;
  settle(outcome: Outcome): void;
}

function sleepUnlessStopped(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Parses a record's value: the JSON text to post and the client it belongs to, or why it cannot be posted. */
function parseRecord(record: SourceRecord): { text: string; clientId: string } | { code: string; message: string } {
  if (record.value === null) return { code: "empty_value", message: "record has no value (tombstone)" };
  if (Buffer.isBuffer(record.value)) return { code: "invalid_utf8", message: "value is not UTF-8" };
  if (Buffer.isBuffer(record.key)) return { code: "invalid_utf8", message: "key is not UTF-8" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(record.value);
  } catch (e) {
    return { code: "invalid_json", message: `value is not JSON: ${(e as Error).message}` };
  }
  const fromValue = (parsed as { client_id?: unknown } | null)?.client_id;
  // An empty key is no key: kafkajs hands one over as "" (an empty Buffer), not null.
  return { text: record.value, clientId: record.key || (typeof fromValue === "string" ? fromValue : "") };
}

/**
 * Kafka → `POST /v1/ingest/events`, at least once. Records wait in one buffer per key (the client),
 * across partitions; a request carries whole buffers of several keys, at most `maxInFlight` requests
 * at once. A partition's batch is committed only after every one of its records was either stored (2xx)
 * or written to the dead-letter topic. Transient answers (policy.ts) and network failures are retried
 * with backoff (honouring Retry-After) for as long as this member owns the partition; 413 halves the
 * request; 400/415 send its records to the dead-letter topic; a wrong key or URL (401/403/404, a
 * redirect) stops the bridge without committing.
 */
export class Bridge {
  readonly progress = new Progress();
  private readonly opts: Required<Omit<BridgeOptions, "onFatal">> & Pick<BridgeOptions, "onFatal">;
  private readonly waiting: KeyBuffers<Pending>;
  /** The linger ran out: partial buffers go with the next free request slot. */
  private partialDue = false;
  /** Requests being sent (with their retries). */
  private readonly inFlight = new Set<Promise<void>>();
  /** handleBatch calls that began before the stop, up to and including their commits, by batch. */
  private readonly handling = new Map<SourceBatch, Promise<void>>();
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  private drained: Promise<void> | undefined;
  /** Batches whose partition this member lost (a heartbeat said so): their records are not worth retrying. */
  private readonly lost = new WeakSet<SourceBatch>();
  private readonly stopped = new AbortController();
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  fatal: BridgeFatal | null = null;

  constructor(opts: BridgeOptions) {
    const maxBatchRecords = opts.maxBatchRecords ?? 500;
    if (!Number.isInteger(maxBatchRecords) || maxBatchRecords < 1 || maxBatchRecords > MAX_RECORDS_PER_POST) {
      throw new RangeError(`maxBatchRecords must be 1..${MAX_RECORDS_PER_POST}`);
    }
    const maxInFlight = opts.maxInFlight ?? 8;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) throw new RangeError("maxInFlight must be a positive integer");
    this.opts = {
      maxBatchRecords,
      maxBatchBytes: opts.maxBatchBytes ?? DEFAULT_MAX_BYTES,
      lingerMs: opts.lingerMs ?? 100,
      maxInFlight,
      heartbeatMs: opts.heartbeatMs ?? 3000,
      backoff: opts.backoff ?? { baseMs: 250, maxMs: 30_000 },
      sleep: opts.sleep ?? sleepUnlessStopped,
      post: opts.post,
      deadLetters: opts.deadLetters,
      onFatal: opts.onFatal,
    };
    this.waiting = new KeyBuffers({ maxRecords: maxBatchRecords, maxBytes: this.opts.maxBatchBytes });
  }

  get stopping(): boolean {
    return this.stopped.signal.aborted;
  }

  /**
   * Handles one fetched batch (the consumer's onBatch). Resolves when every record is settled; commits
   * the batch's end only if all were stored or dead-lettered and the partition is still ours. Never
   * rejects: a failed commit is logged and left to the partition's next reader.
   */
  readonly handleBatch = async (batch: SourceBatch): Promise<void> => {
    // Returning at once would have kafkajs fetch the same records again and again until it stops.
    if (this.stopping) return this.drained;
    if (batch.records.length === 0) return;
    const handling = this.settleAndCommit(batch);
    this.handling.set(batch, handling);
    this.keepAlive ??= setInterval(() => void this.heartbeatAll(), this.opts.heartbeatMs);
    try {
      await handling;
    } finally {
      this.handling.delete(batch);
      if (this.handling.size === 0) {
        clearInterval(this.keepAlive);
        this.keepAlive = undefined;
      }
    }
  };

  /** The consumer's new assignment after a rebalance: partitions given away leave the lag total. */
  readonly assigned = (partitions: { topic: string; partition: number }[]): void => {
    this.progress.retain(partitions);
  };

  private async settleAndCommit(batch: SourceBatch): Promise<void> {
    this.progress.observe(batch.topic, batch.partition, batch.highWatermark, batch.records[0]?.offset);
    const unpostable: DeadLetter[] = [];
    const waits: Promise<Outcome>[] = [];
    for (const record of batch.records) {
      const parsed = parseRecord(record);
      if ("code" in parsed) {
        unpostable.push({ record, status: 0, code: parsed.code, message: parsed.message });
        continue;
      }
      const bytes = Buffer.byteLength(parsed.text) + 1; // and its comma
      waits.push(new Promise<Outcome>((settle) => this.enqueue(parsed.clientId, { record, text: parsed.text, bytes, batch, settle })));
    }
    this.sendWhatMayGo();
    const lettersKept = unpostable.length === 0 || (await this.deadLetter(unpostable, [batch]));
    const outcomes = await Promise.all(waits);
    if (!lettersKept || outcomes.includes("abandoned") || this.lost.has(batch) || !batch.isActive()) return;
    const next = (BigInt(batch.records.at(-1)!.offset) + 1n).toString();
    try {
      await batch.commit(next);
    } catch (e) {
      // Thrown into kafkajs, this would end the consumer (it wraps rebalance errors as non-retriable).
      // Nothing is lost: the partition's next reader, this member or another, starts at the last commit.
      console.error(`bridge: commit of ${batch.topic}/${batch.partition} up to ${next} refused, left to the next reader: ${(e as Error).message}`);
      return;
    }
    this.progress.committed(batch.topic, batch.partition, next);
  }

  /**
   * A clean stop, to be awaited before the consumer stops (it must still be running to commit): partial
   * batches are sent at once, nothing is retried any more, and new batches are left for the next owner.
   * Resolves when every request in flight has finished and the batches they completed are committed.
   */
  stop(): Promise<void> {
    this.stopped.abort();
    this.drained ??= (async () => {
      this.sendWhatMayGo();
      while (this.inFlight.size > 0 || this.handling.size > 0) await Promise.allSettled([...this.inFlight, ...this.handling.values()]);
    })();
    return this.drained;
  }

  private enqueue(key: string, p: Pending): void {
    if (this.stopping) return p.settle("abandoned");
    this.waiting.add(key, p);
  }

  /** Starts requests while fewer than maxInFlight are under way: full buffers, then due partial ones. */
  private sendWhatMayGo(): void {
    while (this.inFlight.size < this.opts.maxInFlight) {
      const items = this.waiting.next(this.partialDue || this.stopping);
      if (!items) break;
      this.startSending(items);
    }
    if (!this.waiting.hasPartial) {
      this.partialDue = false;
      clearTimeout(this.lingerTimer);
      this.lingerTimer = undefined;
    } else if (!this.partialDue) {
      this.lingerTimer ??= setTimeout(() => {
        this.lingerTimer = undefined;
        this.partialDue = true;
        this.sendWhatMayGo();
      }, this.opts.lingerMs);
    }
  }

  private startSending(items: Pending[]): void {
    const sending: Promise<void> = this.send(items)
      .catch((e: unknown) => {
        // An unexpected failure (a bug, not a response): the records stay uncommitted and come back.
        console.error(`bridge: send failed: ${(e as Error).message}`);
        settleAll(items, "abandoned");
      })
      .finally(() => {
        this.inFlight.delete(sending);
        this.sendWhatMayGo();
      });
    this.inFlight.add(sending);
  }

  /** Posts `items` until they are stored, dead-lettered, or not worth retrying any more. */
  private async send(items: Pending[]): Promise<void> {
    for (let attempt = 0; ; attempt += 1) {
      items = this.stillOwned(items);
      if (items.length === 0) return;
      let verdict: Verdict;
      this.progress.posts += 1;
      try {
        verdict = await this.opts.post(items.map((p) => p.text));
      } catch (e) {
        // fetch says only "fetch failed": what failed (ECONNREFUSED, ENOTFOUND, a certificate) is its cause.
        const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
        const why = cause ? ` (${String(cause.code ?? cause.message)})` : "";
        verdict = { kind: "retry", status: 0, code: `network_error: ${(e as Error).message}${why}`, delayMs: null };
      }
      switch (verdict.kind) {
        case "delivered": {
          const letters = verdict.rejected.flatMap((r) => {
            const p = items[r.index];
            return p ? [{ record: p.record, status: 200, code: r.code, message: r.message }] : [];
          });
          const kept = letters.length === 0 || (await this.deadLetter(letters, batchesOf(items)));
          if (kept) {
            this.progress.delivered += verdict.accepted + verdict.duplicates;
            this.progress.duplicates += verdict.duplicates;
          }
          return settleAll(items, kept ? "done" : "abandoned");
        }
        case "split":
          if (items.length > 1) {
            const half = Math.ceil(items.length / 2);
            await this.send(items.slice(0, half));
            return this.send(items.slice(half));
          }
          return this.refuse(items, verdict);
        case "dead_letter":
          return this.refuse(items, verdict);
        case "fatal":
          this.fail(new BridgeFatal(verdict.status, verdict.code, verdict.message));
          return settleAll(items, "abandoned");
        case "retry":
          // A request's first retry and every tenth: why nothing moves (a wrong host, a 503 storm), not a line a backoff.
          if (attempt % 10 === 0) console.error(`bridge: ${items.length} records not stored (${verdict.status ? `${verdict.status} ` : ""}${verdict.code}), retrying`);
          if (!(await this.waitToRetry(attempt, verdict.delayMs, items))) return settleAll(items, "abandoned");
      }
    }
  }

  private async refuse(items: Pending[], v: { status: number; code: string; message: string }): Promise<void> {
    const letters = items.map((p) => ({ record: p.record, status: v.status, code: v.code, message: v.message }));
    settleAll(items, (await this.deadLetter(letters, batchesOf(items))) ? "done" : "abandoned");
  }

  /** Writes dead letters, retrying while the partitions are ours; false when it gave up (stop, lost partition). */
  private async deadLetter(letters: DeadLetter[], batches: SourceBatch[]): Promise<boolean> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await this.opts.deadLetters.send(letters);
        this.progress.deadLettered += letters.length;
        return true;
      } catch (e) {
        console.error(`bridge: dead-letter topic unavailable: ${(e as Error).message}`);
        if (!(await this.waitToRetry(attempt, null, batches.map((batch) => ({ batch }))))) return false;
      }
    }
  }

  /** Backs off before a retry, keeping the group membership alive; false when the retry should not happen. */
  private async waitToRetry(attempt: number, serverDelayMs: number | null, items: { batch: SourceBatch }[]): Promise<boolean> {
    if (this.stopping) return false;
    this.progress.retries += 1;
    await this.opts.sleep(backoffDelay(attempt, serverDelayMs, this.opts.backoff), this.stopped.signal);
    if (this.stopping) return false;
    for (const batch of batchesOf(items)) await this.heartbeat(batch);
    return items.some((p) => !this.lost.has(p.batch) && p.batch.isActive());
  }

  private async heartbeatAll(): Promise<void> {
    for (const batch of [...this.handling.keys()]) await this.heartbeat(batch);
  }

  /** A failed heartbeat means a rebalance is taking the partition away (or this member was evicted). */
  private async heartbeat(batch: SourceBatch): Promise<void> {
    if (this.lost.has(batch)) return;
    try {
      await batch.heartbeat();
    } catch {
      this.lost.add(batch);
    }
  }

  /** Drops (as abandoned) the records whose partition this member no longer owns. */
  private stillOwned(items: Pending[]): Pending[] {
    const owned: Pending[] = [];
    for (const p of items) {
      if (!this.lost.has(p.batch) && p.batch.isActive()) owned.push(p);
      else p.settle("abandoned");
    }
    return owned;
  }

  private fail(error: BridgeFatal): void {
    if (this.fatal) return;
    this.fatal = error;
    this.stopped.abort();
    settleAll(this.waiting.takeAll(), "abandoned");
    this.opts.onFatal?.(error);
  }
}

function settleAll(items: Pending[], outcome: Outcome): void {
  for (const p of items) p.settle(outcome);
}

function batchesOf(items: { batch: SourceBatch }[]): SourceBatch[] {
  return [...new Set(items.map((p) => p.batch))];
}
