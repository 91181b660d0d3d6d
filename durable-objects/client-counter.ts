import { DurableObject } from "cloudflare:workers";
import type { CategoryCounts, ClientObject, Erasure, MinuteCounts, StatusCounts } from "../schema/api.ts";
import { STATUSES } from "../schema/event.ts";
import { DAY_MS } from "../schema/time.ts";
import type { NotificationEvent } from "../schema/event.ts";
import { BillableLedger, pricingColumns, type LedgerLine } from "./billable-ledger.ts";
import {
  SCHEMA,
  eventKey,
  eventTableDdl,
  eventTableExpired,
  eventTableFor,
  eventTablesIn,
  storedEventRef,
  storedIdSql,
  upgradeLegacyOutbox,
  upgradeMinuteCounts,
  type EventTable,
} from "./client-counter-tables.ts";
import { counterOf, messageShard } from "./client-shards.ts";
import { CounterReads } from "./counter-reads.ts";
import { IngestTally } from "./ingest-tally.ts";
import { batchBytes, decodeBatch, encodeBatch, MAX_CALL_BYTES, rowOf, type EventBatch } from "./event-batch.ts";
import { LakeCompaction, type CompactedNow } from "./lake-compaction.ts";
import { LakeFlush } from "./lake-flush.ts";
import { LakeTurns } from "./lake-turns.ts";
import { RecipientErasure } from "./recipient-erasure.ts";
import { lateDays, markLateBilling } from "./late-billing.ts";
import { Outbox } from "./outbox.ts";
import { ClientLive, type ShardRollup } from "./client-live.ts";
import { closeQuietly, refuseViewerMessage } from "./live-sockets.ts";
import { PendingAggregates, type Track } from "./pending-aggregates.ts";
import { LayoutChanges, Reshard, type LayoutState, type Transition } from "./reshard.ts";
import { CHECKPOINT_INTERVAL_MS, type ClientRollup } from "./rollups.ts";
import { FLUSH_INTERVAL_MS } from "./lake-schedule.ts";
import { StorageWatch } from "./storage-watch.ts";
import { isStorageFull } from "../workers/errors.ts";
import { countersOf } from "../workers/client-counters.ts";
import { logLine } from "../workers/log.ts";

/** What the ingest Worker knows about the client when it calls. */
export interface ClientRef {
  id: string;
  timezone: string;
  /** The client's shard count (1 when absent) and which of them this call is for (0 when absent). */
  shards?: number;
  shard?: number;
}

export interface IngestResult {
  accepted: number;
  duplicates: number;
  /** SQLite rows written by this call (billing unit), for benchmarks and capacity planning. */
  rowsWritten: number;
  rowsRead: number;
  /** The part of `rowsWritten` the object wrote in the background (flushes) since its previous call. */
  backgroundRowsWritten: number;
  /** A rollup for the caller to relay to the Overview, when the caller took it and one was due. */
  rollup: ClientRollup | null;
  /**
   * The events of this call that another shard, full, refused (isStorageFull), by their index in the
   * call's batch: during a reshard's transition a call's events of old messages go to the shard that
   * holds them (`ingestResharded`), and the rest are stored all the same.
   */
  refused?: RefusedPart[];
}

/** A shard at its storage limit and the events of a call it refused. */
export interface RefusedPart {
  shard: number;
  events: number[];
}

/** What calls report about their storage work, without the rollup. */
export type IngestFigures = Omit<IngestResult, "rollup">;

/** Adds one call's figures into `total` (the calls of one request, or the parts of one call). */
export function addFigures(total: IngestFigures, part: IngestFigures): void {
  total.accepted += part.accepted;
  total.duplicates += part.duplicates;
  total.rowsWritten += part.rowsWritten;
  total.rowsRead += part.rowsRead;
  total.backgroundRowsWritten += part.backgroundRowsWritten;
}

/**
 * A group's rows in UTF-8 bytes at most: they become one outbox row, and a SQLite-backed object
 * refuses a value over 2 MB; the room above MAX_CALL_BYTES lets a full call share its group.
 */
const MAX_GROUP_BYTES = MAX_CALL_BYTES + (MAX_CALL_BYTES >> 1);

/** An ingest call waiting for its group's transaction. */
interface WaitingCall {
  client: ClientRef;
  batch: EventBatch;
  options: IngestOptions;
  resolve(result: IngestResult): void;
  reject(err: unknown): void;
}

/** Options of an ingest call. */
export interface IngestOptions {
  /** The caller relays a due rollup to the Overview (the ingest Worker does, in batches). */
  relayRollup?: boolean;
  /** Sent on by another shard during a reshard's transition: these messages are this shard's (see `ingestResharded`). */
  forwarded?: boolean;
  /**
   * The caller dead-letters the events a full shard refused (`IngestResult.refused`). A Worker of
   * the code before, still running in a deploy's first seconds, does not ask, and gets the refusal
   * thrown, as that code expects: it would answer 200 for events it never read about.
   */
  takesRefused?: boolean;
}

export { type LedgerLine } from "./billable-ledger.ts";

/**
 * One per client (`idFromName(client_id)`). Deduplicates events, keeps per-minute counters, the
 * billable-message ledger and the outbox of detail rows, all in one SQLite transaction per call (or
 * per group of calls that reached it together, see `ingest`).
 */
export class ClientCounter extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private eventTables: EventTable[] = [];
  private clientId: string | null = null;
  /**
   * The shard count the object's events are routed by, once stated: by its first call of a sharded
   * client or by an admin change (`relayout`). Null means one: an unsharded client's objects store
   * nothing. A call routed by another count is refused (see `checkLayout`).
   */
  private statedShardCount: number | null = null;
  /** Which shard of its client this object is (0 for a client of one shard). */
  private shard = 0;
  /** The shard count the client had before it grew with events, while that change's transition lasts. */
  private readonly reshard: Reshard;
  /** Which admin changes of the count hold the object's layout, and what it was before them. */
  private readonly layoutChanges: LayoutChanges;
  /** The client's time zone as of its last ingest: the flush alarm needs it to settle the Overview's rollup. */
  private timezone: string | null = null;
  private readonly outbox: Outbox;
  private readonly pending: PendingAggregates;
  private readonly ledger: BillableLedger;
  private readonly reads: CounterReads;
  /** Storage work done outside ingest calls (flushes), reported with the next ingest's figures. */
  private readonly background = { rowsWritten: 0, rowsRead: 0 };
  private readonly trackBackground = countRowsInto(this.background);
  private readonly live: ClientLive;
  private readonly lake: LakeFlush;
  private readonly compaction: LakeCompaction;
  private readonly erasure: RecipientErasure;
  private readonly ingestTally = new IngestTally();
  private readonly storageWatch = new StorageWatch();
  /** Whether the last batch was all new events (see `insertEvents`). */
  private expectNew = true;
  /** Ingest calls waiting for the next group transaction (see `ingest`). */
  private waiting: WaitingCall[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.outbox = new Outbox(this.sql);
    this.reshard = new Reshard(this.sql);
    this.layoutChanges = new LayoutChanges(this.sql);
    this.pending = new PendingAggregates(this.sql, this.outbox);
    this.ledger = new BillableLedger(this.sql, this.pending);
    this.reads = new CounterReads(this.sql, this.pending);
    this.live = new ClientLive(ctx, env, this);
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
      upgradeLegacyOutbox(this.sql);
      upgradeMinuteCounts(this.sql);
      this.loadState();
    });
    const absorbOutbox = () => this.pending.flush(this.trackBackground);
    this.lake = new LakeFlush(ctx, this.outbox, env.LAKE, () => this.clientId, this.trackBackground, (write) => this.transact(write), absorbOutbox);
    const turns = new LakeTurns();
    this.compaction = new LakeCompaction(this.sql, this.lake, this.trackBackground, turns);
    this.erasure = new RecipientErasure(this.sql, this.lake, this.trackBackground, turns, (clientId, shards) => this.flushShards(clientId, shards));
  }

  /**
   * Runs `write` as one transaction. One that rolls back leaves SQLite as it was, but not the
   * in-memory mirrors it changed on the way (pending counters it cleared, outbox or event tables it
   * noted, the layout), so they are read again before the error goes on: else the next write would
   * build on changes that were never stored (a counter update lost for good, say).
   */
  private transact(write: () => void): void {
    try {
      this.ctx.storage.transactionSync(write);
    } catch (err) {
      this.loadState();
      throw err;
    }
  }

  /** In-memory mirrors of what SQLite holds: the event tables, the client id, the outbox tables, pending counters. */
  private loadState(): void {
    this.eventTables = eventTablesIn(this.sql);
    const meta = new Map(
      this.sql.exec<{ key: string; value: string }>("SELECT key, value FROM meta WHERE key IN ('client_id', 'timezone', 'shard', 'shards')").toArray().map((r) => [r.key, r.value]),
    );
    this.clientId = meta.get("client_id") ?? null;
    this.timezone = meta.get("timezone") ?? null;
    this.statedShardCount = meta.has("shards") ? Number(meta.get("shards")) : null;
    this.shard = Number(meta.get("shard") ?? 0);
    this.outbox.useShard(this.shard);
    this.outbox.load();
    this.reshard.load();
    this.layoutChanges.load();
    this.pending.restore();
  }

  /**
   * Records a batch of canonical events of this client. Resolves after the transaction that holds it
   * has committed, so a 2xx upstream means the events are durable. The figures include storage work
   * done in the background since the previous call, so summed over calls they are the object's whole
   * cost.
   *
   * Calls are grouped: a call waits for the next turn, and every call that reached the object by then
   * shares one transaction, one commit and one outbox row (`ingestWaiting`). A client whose calls
   * queue at its object (a hot one, or one that Meta sends a status per webhook) pays the per-call
   * rows and work once per group; a lone call pays one timer turn.
   */
  ingest(client: ClientRef, batch: EventBatch, options: IngestOptions = {}): Promise<IngestResult> {
    const transition = options.forwarded ? null : this.reshard.at(Date.now());
    return transition ? this.ingestResharded(client, batch, options, transition.previous) : this.enqueue(client, batch, options);
  }

  /**
   * During a reshard's transition (reshard.ts): the events of messages this shard does not know,
   * whose shard under the previous count was another, go to that shard when it knows their message
   * (it got statuses before the change), so dedup and the ledger still see all of a message in one
   * place; the rest are this shard's. Only this shard can send a message there, and only one that
   * shard knows, so a message's place is settled by the first status after the change. Resolves
   * once every part has committed.
   */
  private async ingestResharded(client: ClientRef, batch: EventBatch, options: IngestOptions, previous: number): Promise<IngestResult> {
    const { events } = decodeBatch(batch);
    // The call names the shard: an object learns it from its first call, which this may be.
    const self = client.shard ?? 0;
    const movable = [...new Set(events.map((e) => e.message_id).filter((m) => messageShard(m, previous) !== self))];
    const known = new Set(this.knownMessages(movable));
    const toAsk = Map.groupBy(
      movable.filter((m) => !known.has(m)),
      (m) => messageShard(m, previous),
    );
    const claimed = new Map<string, number>();
    await Promise.all(
      [...toAsk].map(async ([shard, ids]) => {
        for (const m of await counterOf(this.env, client.id, shard).knownMessages(ids)) claimed.set(m, shard);
      }),
    );
    if (claimed.size === 0) return this.enqueue(client, batch, options);
    // A claimed message's old shard is never this one (only messages of other shards were asked about).
    const byShard = Map.groupBy(
      events.map((event, index) => ({ event, index })),
      ({ event }) => claimed.get(event.message_id) ?? self,
    );
    const parts = [...byShard];
    const settled = await Promise.allSettled(
      parts.map(([shard, list]) => {
        const batch = encodeBatch(list.map((e) => e.event));
        return shard === self ? this.enqueue(client, batch, options) : counterOf(this.env, client.id, shard).ingest({ ...client, shard }, batch, { forwarded: true });
      }),
    );
    const total: IngestResult = { accepted: 0, duplicates: 0, rowsWritten: 0, rowsRead: 0, backgroundRowsWritten: 0, rollup: null };
    const refused: RefusedPart[] = [];
    settled.forEach((r, i) => {
      const [shard, list] = parts[i]!;
      if (r.status === "fulfilled") {
        addFigures(total, r.value);
        if (shard === self) total.rollup = r.value.rollup;
      } else if (options.takesRefused && isStorageFull(r.reason)) {
        // The other parts are stored: a 503 would have the sender repeat them, and this part stays
        // refused until that shard has room, so the caller dead-letters just these events.
        refused.push({ shard, events: list.map((e) => e.index) });
      } else {
        throw r.reason;
      }
    });
    if (refused.length > 0) total.refused = refused;
    return total;
  }

  /** Which of `messageIds` this object holds statuses of. */
  knownMessages(messageIds: string[]): string[] {
    if (messageIds.length === 0) return [];
    const ids = JSON.stringify(messageIds);
    const out = new Set<string>();
    for (const t of this.eventTables) {
      for (const r of this.sql.exec<{ message_id: string }>(`SELECT DISTINCT message_id FROM ${t.name} WHERE message_id IN (SELECT value FROM json_each(?))`, ids)) {
        out.add(r.message_id);
      }
    }
    return [...out];
  }

  private enqueue(client: ClientRef, batch: EventBatch, options: IngestOptions): Promise<IngestResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ client, batch, options, resolve, reject });
      if (this.waiting.length === 1) setTimeout(() => this.ingestWaiting(), 0);
    });
  }

  /**
   * The waiting calls of the next group, oldest first: as many as keep its rows, which become one
   * outbox row, within MAX_GROUP_BYTES (one call at least; a call is within MAX_CALL_BYTES).
   */
  private nextGroup(): WaitingCall[] {
    let bytes = 0;
    let n = 0;
    for (; n < this.waiting.length; n++) {
      const call = batchBytes(this.waiting[n]!.batch, MAX_GROUP_BYTES - bytes);
      if (n > 0 && bytes + call > MAX_GROUP_BYTES) break;
      bytes += call;
    }
    return this.waiting.splice(0, n);
  }

  /**
   * Ingests the waiting calls as one group. A group that fails is tried again call by call, so one
   * bad call fails alone instead of failing the calls it was grouped with.
   */
  private ingestWaiting(): void {
    const calls = this.nextGroup();
    if (this.waiting.length > 0) setTimeout(() => this.ingestWaiting(), 0);
    let results: IngestResult[];
    try {
      results = this.ingestGroup(calls);
    } catch (err) {
      if (calls.length === 1) {
        calls[0]!.reject(err);
        return;
      }
      for (const call of calls) {
        try {
          call.resolve(this.ingestGroup([call])[0]!);
        } catch (callErr) {
          call.reject(callErr);
        }
      }
      return;
    }
    calls.forEach((call, i) => call.resolve(results[i]!));
  }

  /**
   * One transaction for `calls` (all of this client): their events deduplicated together in arrival
   * order (a later call's copy of an event is its duplicate), one outbox row for all they accepted.
   */
  private ingestGroup(calls: WaitingCall[]): IngestResult[] {
    const now = Date.now();
    // The latest call knows the client's time zone best (it changes rarely, and then from the next call on).
    const client = calls.at(-1)!.client;
    // One count for the whole group: calls routed by two counts (a stale isolate's and a fresh one's)
    // must not commit together at an object that has not stated its count yet.
    for (const call of calls) this.checkLayout(call.client, client.shards ?? 1);
    const batches = calls.map((c) => decodeBatch(c.batch));
    const events = batches.length === 1 ? batches[0]!.events : batches.flatMap((b) => b.events);
    const figures: StorageFigures = { rowsWritten: 0, rowsRead: 0, backgroundRowsWritten: 0 };
    const track = countRowsInto(figures);
    let isNew: boolean[] = [];
    let accepted: NotificationEvent[] = [];
    let late: string[] = [];

    this.dropExpiredEventTables(now, track);
    this.transact(() => {
      this.rememberClient(client, track);
      const current = this.ensureEventTable(now, track);
      const priced = this.ledger.withPricing(events, this.eventTables, track);
      const billing = this.ledger.plan(priced, client.timezone, this.eventTables, track);
      isNew = this.insertEvents(current, priced, (e) => [e.message_id, storedEventRef(e.message_id, e.event_id), ...pricingColumns(e, billing.columns(e))], track);
      accepted = priced.filter((_e, i) => isNew[i]);
      // Settled even when every event is a duplicate: a priced copy of a status first stored without
      // pricing (a mirror topic's) is one, and its message's bill rests on it (billable-ledger.ts).
      const ledger = billing.settle(accepted, track);
      if (accepted.length === 0 && ledger.length === 0) return;
      late = lateDays(ledger, client.timezone, now);
      // One call whose events were all new, as sent: its rows' text is the outbox row as it is.
      const asSent = batches.length === 1 && accepted.length === events.length && priced === events ? batches[0]! : null;
      const details = asSent ? asSent.rows : accepted.map(rowOf);
      const seq = this.outbox.append(accepted.length, asSent ? asSent.text : JSON.stringify(details), JSON.stringify(ledger), track);
      this.pending.add(seq, details, ledger);
      if (this.pending.full()) this.pending.flush(track);
    });
    this.takeBackgroundFigures(figures);

    this.reads.absorb(accepted);
    this.lake.noteIngested(accepted.length);
    if (late.length > 0) {
      this.ctx.waitUntil(
        markLateBilling(this.env.DB, client.id, late, now).catch((err: unknown) =>
          logLine("error", "billing_rebill_not_marked", { client_id: client.id }, err),
        ),
      );
    }
    // One rollup for the group's changes, handed to the last call that relays (the others' relays
    // would carry the same counts).
    const relaying = calls.findLastIndex((c) => c.options.relayRollup);
    const rollup = this.live.changed({ id: client.id, timezone: client.timezone, shard: this.shard }, accepted, relaying >= 0);
    const results = resultsPerCall(batches.map((b) => b.events.length), isNew, figures, { rollup, to: relaying });
    this.ingestTally.committed(batches, results, figures.rowsWritten);
    return results;
  }

  /**
   * Adds the storage work done in the background since the previous call to a committed call's
   * `figures` (its `backgroundRowsWritten` part too), and zeroes the running count: taken only once
   * the call commits, so a call that fails leaves them to the next one.
   */
  private takeBackgroundFigures(figures: StorageFigures): void {
    figures.rowsWritten += this.background.rowsWritten;
    figures.rowsRead += this.background.rowsRead;
    figures.backgroundRowsWritten = this.background.rowsWritten;
    this.background.rowsWritten = 0;
    this.background.rowsRead = 0;
  }

  /**
   * Keeps in `meta` what a call says about the client that this object must know between calls: its
   * id and time zone (for the flush alarm and its rollups), which shard this object is, and a sharded
   * client's shard count (see `checkLayout`). Writes only what changed.
   */
  private rememberClient(client: ClientRef, track: Track): void {
    if (this.clientId !== client.id || this.timezone !== client.timezone) {
      track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('client_id', ?), ('timezone', ?)", client.id, client.timezone));
      this.clientId = client.id;
      this.timezone = client.timezone;
    }
    const shard = client.shard ?? 0;
    if (shard !== this.shard) {
      this.shard = shard;
      track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('shard', ?)", String(shard)));
      this.outbox.useShard(shard);
    }
    if (this.statedShardCount === null && (client.shards ?? 1) > 1) {
      this.statedShardCount = client.shards!;
      track(this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('shards', ?)", String(this.statedShardCount)));
    }
  }

  /**
   * Refuses a call routed by another shard count than this object's events were: a message's later
   * statuses would be counted and billed in another shard than its earlier ones. Only a call from an
   * isolate whose cached client predates an admin change (`relayout`) meets this; the Worker drops
   * its cache when a call fails, and the sender's retry is routed by the new count.
   */
  private checkLayout(client: ClientRef, groupShards: number): void {
    const shards = client.shards ?? 1;
    if (shards !== groupShards) throw new Error(`shard layout mismatch: ${client.id} calls routed by ${shards} and ${groupShards} shards met`);
    if (shards === (this.statedShardCount ?? 1)) return;
    // An object that never stated a count takes a sharded client's first call, unless it holds events (routed by one).
    if (this.statedShardCount === null && !this.holdsEvents()) return;
    throw new Error(`shard layout mismatch: ${client.id} is served by ${this.statedShardCount ?? 1} shards here, the call was routed by ${shards}`);
  }

  /** The shard count this object serves, once stated (the live layer shows the sum of that many). */
  statedShards(): number | null {
    return this.statedShardCount;
  }

  /** The client's time zone as this object was last told it (by a call or an admin's change). */
  statedTimezone(): string | null {
    return this.timezone;
  }

  private holdsEvents(): boolean {
    return this.eventTables.some((t) => this.sql.exec(`SELECT 1 FROM ${t.name} LIMIT 1`).toArray().length > 0);
  }

  /**
   * Makes this object serve a client of `shards` shards: an admin change of the count (`change`, its
   * id), which the Worker asks of every object before it changes D1 (workers/client-counters.ts).
   * With a `transition`, the client grows while it has events (see `ingestResharded`). Refused when
   * the object holds events and no transition is asked for (their messages' later statuses would go
   * to another shard), or while an earlier transition from another count lasts. The count is stored
   * even when it is 1, so that a call routed by the old count is refused from now on. Asked again for
   * the count it serves (a retry, or another admin's change to the same count) it agrees, with the
   * same transition or without one when it holds no events.
   */
  relayout(shards: number, transition: Transition | null, change: string): { ok: boolean; refused?: "holds_events" | "resharding" } {
    const prior: LayoutState = { layout: this.statedShardCount, transition: this.reshard.at(Date.now()) };
    // Before the same-count answer: an object holding events that applied a growth and its
    // transition but whose answer was lost (the Worker put the others back) must not agree to the
    // admin's retry without a transition, or the other shards would take the count without one and
    // count its messages' later statuses as new. Refused here, the retry asks again with a
    // transition, which this object agrees to as it is and the others take. The Worker putting
    // back the object whose answer it lost would not do instead: it never learnt what the object
    // held before, and the put-back may overtake the call it undoes.
    if (transition === null && this.holdsEvents()) return { ok: false, refused: "holds_events" };
    if (this.statedShardCount === shards && (transition === null || prior.transition?.previous === transition.previous)) {
      this.transact(() => this.layoutChanges.joined(change));
      return { ok: true };
    }
    // A transition from the count D1 still holds (the change asks to leave it) is one whose change
    // never reached D1, its answer lost here or its D1 write failed: a new count replaces it, or the
    // client could change to no other count until it ended, months on. One that did reach D1 lasts.
    if (prior.transition && prior.transition.previous !== transition?.previous) return { ok: false, refused: "resharding" };
    this.transact(() => {
      this.setLayout(shards);
      this.reshard.set(transition);
      this.layoutChanges.made(change, prior);
    });
    // Viewers of shard 0 start again from a snapshot over the new count.
    if (this.shard === 0) for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, 1012, "client resharded");
    return { ok: true };
  }

  /**
   * Puts back what `change` found (another object refused it, or D1 did not take it), unless a
   * change of the count made the layout since (it is then the object's layout, and D1's) or another
   * change that agreed to the same layout still may go through.
   */
  restoreLayout(change: string): void {
    this.transact(() => {
      const prior = this.layoutChanges.release(change);
      if (!prior) return;
      this.setLayout(prior.layout);
      this.reshard.set(prior.transition);
    });
  }

  private setLayout(layout: number | null): void {
    if (layout === null) this.sql.exec("DELETE FROM meta WHERE key = 'shards'");
    else this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('shards', ?)", String(layout));
    this.statedShardCount = layout;
  }

  /** WebSocket upgrade for `/v1/clients/:id/live`, authorised by the Worker (durable-objects/client-live.ts). */
  override fetch(request: Request): Response {
    return this.live.upgrade(request);
  }

  override webSocketMessage(ws: WebSocket): void {
    refuseViewerMessage(ws);
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    closeQuietly(ws, code, reason);
  }

  /**
   * This shard's last hour and today: the Overview asks when it never heard from the client, a
   * sharded client's shard 0 while someone watches it (at its own `now`, the hour it sums, with the
   * minutes beyond the hour it reads: `ClientLive.rollup`).
   */
  liveRollup(clientId: string, timezone: string, shard: number, now = Date.now(), older?: number[]): ShardRollup {
    return this.live.rollup({ id: clientId, timezone, shard }, now, older);
  }

  /**
   * An admin changed the client (workers/client-changes.ts): its rollup as `liveRollup`, after this
   * object keeps the zone it was given, since the flush alarm rolls up in the zone kept here and its
   * later rollup would put the old zone's "today" back on the Overview. An object that never counted
   * the client has nothing to keep.
   */
  clientChanged(clientId: string, timezone: string, shard: number): ClientRollup {
    if (this.clientId === clientId) this.transact(() => this.rememberClient({ id: clientId, timezone, shard }, this.trackBackground));
    return this.liveRollup(clientId, timezone, shard);
  }

  /**
   * Drops the expired event tables and says whether the object nears its storage limit; then
   * flushes the pending counters and writes the outbox to the R2 lake as Parquet
   * (durable-objects/lake-flush.ts), the second even when the first fails; meanwhile makes sure the
   * Overview saved the last rollup. Then compacts the lake days the nightly cron asked for
   * (`compactLake`) and goes on with a recipient's erasure (`eraseRecipient`), after the flush so
   * that the flush is not held up by them.
   */
  override async alarm(): Promise<void> {
    const flushLake = this.lake.alarmBegan();
    this.dropExpiredEventTables(Date.now(), this.trackBackground);
    this.storageWatch.check(this.sql.databaseSize, Date.now(), { client_id: this.clientId, shard: this.shard });
    try {
      this.transact(() => this.pending.flush(this.trackBackground));
    } catch (err) {
      // At the storage limit: the counters stay durable in the outbox, and the lake flush, which may
      // free the space they need (durable-objects/lake-flush.ts), writes them with its rows.
      logLine("error", "counter_flush_failed", { client_id: this.clientId, shard: this.shard }, err);
    }
    const client = this.clientId && this.timezone ? { id: this.clientId, timezone: this.timezone, shard: this.shard } : null;
    const [settled] = await Promise.all([client ? this.live.settle(client) : true, flushLake()]);
    // Not a timer: a pending one would hold the alarm open until it fired. A client that keeps
    // sending has its next flush alarm within a minute, which settles what this one could not; a
    // wake of its own every checkpoint would come back as long as it sends (each with a whole hour).
    const now = Date.now();
    if (!settled && !this.lake.flushDueBy(now + FLUSH_INTERVAL_MS)) this.lake.wakeAt(now + CHECKPOINT_INTERVAL_MS + 1_000);
    await this.compaction.run();
    await this.erasure.run();
  }

  /**
   * Compacts the lake partitions of `clientId`'s UTC `days` in the alarm, which this wakes now;
   * returns at once (durable-objects/lake-compaction.ts). Asked of a client's shard 0 only: one
   * compaction covers every shard's files of a partition, and two at once must not run on one. The
   * client id comes with the call since shard 0 of a sharded client may never have had an event.
   */
  compactLake(clientId: string, days: string[]): void {
    this.compaction.ask(clientId, days);
  }

  /**
   * Drops the event tables past retention now (the nightly cron asks it of a client's shards other
   * than 0, which `compactLake`'s alarm does it for): otherwise only an ingest call or a flush alarm
   * drops them, and a shard whose traffic stopped would keep its message ids for ever.
   */
  expireEventTables(): void {
    this.dropExpiredEventTables(Date.now(), this.trackBackground);
  }

  /**
   * Compacts `clientId`'s lake partition of the UTC `date` now (`POST /v1/admin/lake/compact`), in
   * turn with the alarm's compactions; asked of shard 0, as `compactLake` is.
   */
  compactLakeNow(clientId: string, date: string): Promise<CompactedNow> {
    return this.compaction.compactNow(clientId, date);
  }

  /**
   * Erases `recipient` from `clientId`'s lake in the alarm, which this wakes now; returns at once
   * with the erasure's state, that of the same recipient's erasure still pending if there is one
   * (durable-objects/recipient-erasure.ts). Asked of a client's shard 0 only, as `compactLake` is,
   * so that the two run in turn; `shards` is the client's count, whose outboxes it flushes first.
   */
  eraseRecipient(clientId: string, shards: number, recipient: string): Erasure {
    return this.erasure.ask(clientId, shards, recipient, Date.now());
  }

  /** The erasure `id` asked of this object (null: none such, or forgotten long after it was done). */
  erasureState(id: string): Erasure | null {
    return this.erasure.get(id);
  }

  /** Flushes this shard's outbox and those of the client's other `shards`, each up to its calls accepted so far. */
  private async flushShards(clientId: string, shards: number): Promise<void> {
    // This shard flushes its own outbox in place, not through a call to its own stub.
    const [, ...others] = countersOf(this.env, { id: clientId, shards });
    await Promise.all([this.lake.flush(), ...others.map((s) => s.flush())]);
  }

  /** Flushes the whole outbox now (`POST /v1/admin/flush`); returns the keys written. */
  flush(): Promise<string[]> {
    return this.lake.flush();
  }

  /**
   * What an operator sizes the client by (`GET /v1/admin/clients/:id/objects`): the object's SQLite
   * size against the per-object limit, the last day's events and busiest minute (by `occurred_at`,
   * from the per-minute counters: ~1,440 rows read), whether the lake keeps up, and the ingest mix
   * since the object started.
   */
  objectStatus(now: number): ClientObject {
    const minutes = this.reads.counters(now - DAY_MS, now);
    const eventsIn = (m: MinuteCounts) => STATUSES.reduce((n, s) => n + m[s], 0);
    const lake = this.lake.state();
    return {
      shard: this.shard,
      storage_bytes: this.sql.databaseSize,
      events_last_24h: minutes.reduce((n, m) => n + eventsIn(m), 0),
      busiest_minute_events: minutes.reduce((max, m) => Math.max(max, eventsIn(m)), 0),
      lake_backlog_events: lake.backlogEvents,
      lake_flush_failures: lake.failures,
      next_alarm_at: lake.nextAlarmAt,
      event_tables: this.eventTables.map((t) => t.name),
      ingest: this.ingestTally.figures(),
    };
  }

  /** Per-minute counts by status in [from, to), one entry per minute that has events. */
  counters(from: number, to: number): MinuteCounts[] {
    return this.reads.counters(from, to);
  }

  /** Counts by pricing category and status over the minutes in [from, to), a category per entry, in no order. */
  categoryTotals(from: number, to: number): CategoryCounts[] {
    return this.reads.categoryTotals(from, to);
  }

  /** Totals by status of the local day in `timezone`. */
  today(timezone: string): StatusCounts {
    return this.reads.today(timezone);
  }

  /** Totals by status in [from, to). */
  totals(from: number, to: number): StatusCounts {
    return this.reads.totals(from, to);
  }

  /**
   * Billable messages of each of the client's local `days` (YYYY-MM-DD), by category and country, in
   * one call (a billing tick recomputes a few days per client).
   */
  ledgerLinesByDay(days: string[]): Record<string, LedgerLine[]> {
    return this.ledger.linesByDay(days);
  }

  /**
   * Inserts the batch's event rows into `current` (unless an older event table has them); returns,
   * per event, whether it is the first occurrence of an event not seen before. Most batches are all
   * new, and then the rows the INSERT wrote equal the distinct ids sent: matching the stored ids back
   * (RETURNING a row per event into JS, ~7 % of a bridged batch's CPU) is only needed when they do
   * not, so that INSERT is rolled back to its savepoint and redone with RETURNING. After a batch with
   * duplicates the next one starts with RETURNING, so a replayed topic does not pay for both.
   */
  private insertEvents(current: EventTable, events: NotificationEvent[], row: (e: NotificationEvent) => EventRowValues, track: Track): boolean[] {
    const notInOlder = this.eventTables
      .filter((t) => t.name !== current.name)
      .map((t) => `AND NOT EXISTS (SELECT 1 FROM ${t.name} WHERE message_id = j.value->>0 AND ${t.idColumn} = ${storedIdSql(t, "j.value->>0", "j.value->>1")})`)
      .join(" ");
    const insert = `INSERT INTO ${current.name} (message_id, ${current.idColumn}, billed_day, category, country, billed_at)
      SELECT j.value->>0, ${storedIdSql(current, "j.value->>0", "j.value->>1")}, j.value->>2, j.value->>3, j.value->>4, j.value->>5 FROM json_each(?) AS j WHERE true ${notInOlder}
      ON CONFLICT DO NOTHING`;
    const values = events.map(row);
    const rows = JSON.stringify(values);
    // As the current table's id column holds them, for matching RETURNING's rows.
    const keys = current.idColumn === "event_ref" ? values.map((v) => eventKey(v[0], v[1])) : events.map((e) => eventKey(e.message_id, e.event_id));
    const distinct = new Set(keys);
    // Only well-formed text is stored as sent; other ids take the RETURNING path and its check.
    if (this.expectNew && keys.every((k) => k.isWellFormed())) {
      try {
        this.ctx.storage.transactionSync(() => {
          const cursor = this.sql.exec(insert, rows);
          cursor.toArray();
          if (cursor.rowsWritten !== distinct.size) throw new SeenBefore();
          track(cursor);
        });
        return keys.map((k) => distinct.delete(k));
      } catch (err) {
        if (!(err instanceof SeenBefore)) throw err;
      }
    }
    const inserted = this.sql.exec<{ message_id: string; id: string }>(`${insert} RETURNING message_id, ${current.idColumn} AS id`, rows);
    const stored = new Set(inserted.toArray().map((r) => eventKey(r.message_id, r.id)));
    track(inserted);
    this.expectNew = stored.size === distinct.size;
    // Keep the first occurrence of each newly seen event; later copies in the same batch are duplicates.
    const isNew = keys.map((k) => stored.delete(k));
    // An id stored but not matched back would be lost for good (its retries count as duplicates):
    // fail the call, which rolls the transaction back, instead.
    if (stored.size > 0) throw new Error(`dedup ids did not round-trip through SQLite (${stored.size})`);
    return isNew;
  }

  private ensureEventTable(now: number, track: Track): EventTable {
    const name = eventTableFor(now);
    const existing = this.eventTables.find((t) => t.name === name);
    if (existing) return existing;
    const current: EventTable = { name, idColumn: "event_ref" };
    track(this.sql.exec(eventTableDdl(name)));
    this.eventTables = [...this.eventTables, current];
    return current;
  }

  /**
   * Drops the event tables past retention at `now`, in a transaction of their own before anything
   * writes (an ingest call, the alarm): an object at its storage limit refuses every write that needs
   * a page, the new month's table first, and inside that write's transaction the DROP would roll back
   * with it, so the space it frees would never come.
   */
  private dropExpiredEventTables(now: number, track: Track): void {
    const expired = this.eventTables.filter((t) => eventTableExpired(t.name, now));
    if (expired.length === 0) return;
    this.transact(() => {
      for (const t of expired) track(this.sql.exec(`DROP TABLE ${t.name}`));
      this.eventTables = this.eventTables.filter((t) => !expired.includes(t));
    });
  }
}

/** An event's row as `insertEvents` hands it to SQLite: message_id, the id as `event_ref` holds it, then the billing columns. */
type EventRowValues = [string, string, string | null, string | null, string | null, number | null];

/** The fast INSERT of `insertEvents` met events it had seen: its savepoint rolls back. */
class SeenBefore extends Error {}

/** Rows a group wrote and read, with the background part of the writes (see `IngestResult`). */
type StorageFigures = Pick<IngestResult, "rowsWritten" | "rowsRead" | "backgroundRowsWritten">;

/**
 * A group's outcome split into its calls' results, in order: each call's accepted and duplicate
 * counts from `isNew` (one entry per event of the group, in arrival order). The group's storage
 * figures go on its first call, so summed over calls they are still the object's whole cost; the
 * rollup goes to the call at index `to`.
 */
function resultsPerCall(eventsPerCall: number[], isNew: boolean[], figures: StorageFigures, rollup: { rollup: ClientRollup | null; to: number }): IngestResult[] {
  let from = 0;
  return eventsPerCall.map((count, i) => {
    let mine = 0;
    for (let k = from; k < from + count; k++) if (isNew[k]) mine++;
    from += count;
    const own = i === 0 ? figures : { rowsWritten: 0, rowsRead: 0, backgroundRowsWritten: 0 };
    return { accepted: mine, duplicates: count - mine, ...own, rollup: i === rollup.to ? rollup.rollup : null };
  });
}

/** A Track that adds each statement's rows written and read to `sink`. */
function countRowsInto(sink: { rowsWritten: number; rowsRead: number }): Track {
  return (cursor) => {
    cursor.toArray();
    sink.rowsWritten += cursor.rowsWritten;
    sink.rowsRead += cursor.rowsRead;
  };
}
