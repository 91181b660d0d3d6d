import { DurableObject } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { eq } from "drizzle-orm";
import { errorBody } from "../schema/api.ts";
import { clients } from "../schema/db.ts";
import { STATUSES } from "../schema/event.ts";
import { HOUR_MINUTES, MINUTE_TICK_DELAY_MS, hourStart, type OverviewLiveMessage, type OverviewRow } from "../schema/live.ts";
import { MINUTE_MS, localDate, minuteOf } from "../schema/time.ts";
import { counterOf, emptyCounts, shardName, splitShardName, sumCounts } from "./client-shards.ts";
import { LIVE_SCOPE_HEADER, acceptLiveSocket, attachmentOf, closeQuietly, openSockets, refuseViewerMessage, sendQuietly } from "./live-sockets.ts";
import { mapBounded, within } from "../workers/concurrency.ts";
import { logLine } from "../workers/log.ts";
import { forwardIntervalMs } from "./forward-interval.ts";
import { TOP_SHARD, overviewShard, overviewShardStub, overviewShards } from "./overview-shards.ts";
import { CHECKPOINT_INTERVAL_MS, addRollup, mergeRollup, type ClientRollup, type RollupReceipt } from "./rollups.ts";

/**
 * Viewers' updates are at least this far apart: 50 ms while updates carry up to 100 rows (a row on
 * the overview has already waited for a relay round and a forward, which a client's own page, at
 * 100 ms, does not); 0.5 ms per row the last update carried above that, up to 250 ms from 500 rows,
 * so a viewer of thousands of busy clients gets four updates a second, not twenty of all their rows
 * (docs/live.md, "The overview's cadence").
 */
const BROADCAST_MIN_INTERVAL_MS = 50;
const BROADCAST_MAX_INTERVAL_MS = 250;
const BROADCAST_MS_PER_ROW = 0.5;

const broadcastIntervalAfter = (rows: number): number =>
  Math.min(BROADCAST_MAX_INTERVAL_MS, Math.max(BROADCAST_MIN_INTERVAL_MS, rows * BROADCAST_MS_PER_ROW));
/**
 * How stale the client list (names, time zones, from D1) may be: a new viewer sees clients created
 * seconds ago; a rollup from a client not in the list re-reads it at most every few seconds.
 */
const SNAPSHOT_DIRECTORY_AGE_MS = 2_000;
const UNKNOWN_CLIENT_DIRECTORY_AGE_MS = 1_000;
const DIRECTORY_AGE_MS = 60_000;
/** After a failed forward, the next try; what failed waits, merged with what comes meanwhile. */
const FORWARD_RETRY_MS = 1_000;
/**
 * How long a forward may take the top (a merge into its memory, milliseconds) before it counts as
 * failed and what it carried waits for the retry. Only one forward is in flight at a time, so this
 * bounds how long a top that hangs holds a shard's forwards.
 */
const FORWARD_TIMEOUT_MS = 5_000;
/** After an update that could not read the client list, the next try: its rows wait for it. */
const BROADCAST_RETRY_MS = 1_000;
/**
 * How long the top waits for a shard's `held()` before it shows its viewers what it has without that
 * shard's quiet clients (a shard's answer is a copy of its memory, milliseconds even when it starts),
 * and how long before it asks a shard that failed or hung again: not at every broadcast.
 */
const GATHER_TIMEOUT_MS = 2_000;
const GATHER_RETRY_MS = 5_000;
/**
 * A shard starting up forwards again the rollups it saved within this long before its newest one: a
 * restart loses the forwards not sent yet, and those are rollups of the last checkpoint or two (a
 * forward goes out within 100 ms of its rollup), which may hold the last news of a quiet client's day.
 */
const RESEND_ON_START_MS = 2 * CHECKPOINT_INTERVAL_MS;
/** Rows per message: keeps a 10,000-client snapshot well under the WebSocket message limit. */
const CHUNK_ROWS = 1_000;
/** Parallel ClientCounter calls while priming clients that never sent a rollup. */
const PRIME_FANOUT = 32;
/**
 * The rows a checkpoint binds in one statement, as JSON: Cloudflare refuses a string over 2 MB
 * (SQLITE_TOOBIG; local workerd does not), and a shard of 500 busy clients (docs/capacity.md) holds
 * ~3 MB of them, a full hour of minutes each.
 */
const CHECKPOINT_STATEMENT_BYTES = 1024 * 1024;
const utf8 = new TextEncoder();

interface DirectoryEntry {
  name: string;
  timezone: string;
  shards: number;
}

/** Kept on each socket (serializeAttachment); a viewer's client list lives in SQLite (attachments hold 2 KiB). */
interface ViewerState {
  sid: string;
  all: boolean;
}

/** `client_id` holds the shard's name (client-shards.ts, `shardName`): a sharded client has a row per shard. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS rollups (
  client_id TEXT PRIMARY KEY, day TEXT NOT NULL, today TEXT NOT NULL, minutes TEXT NOT NULL, at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS viewers (sid TEXT PRIMARY KEY, clients TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * The overview of all clients. Each shard keeps the latest rollups of its clients (FNV-1a of the id,
 * `overviewShard`) and saves them; the top shard (`TOP_SHARD`) also holds what every other shard
 * forwards and serves `/v1/live`, sending every viewer only the clients in its scope.
 */
export class Overview extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly shard: number;
  private readonly top: boolean;
  /** Each client's latest rollup from each of its shards. */
  private readonly rollups = new Map<string, Map<number, ClientRollup>>();
  private readonly scopes = new Map<string, Set<string>>();
  /** Last row text sent per client, so ticks and rollups send only rows that changed. */
  private readonly sent = new Map<string, string>();
  private readonly dirty = new Set<string>();
  /**
   * On the top: clients whose name, zone or state changed since their last update. One the list no
   * longer has was suspended and may be on screens, though neither `sent` nor the list read before the
   * update need know it: both are empty after a wake, and a viewer's connect may have re-read the list.
   */
  private readonly relisted = new Set<string>();
  private directory: Map<string, DirectoryEntry> | null = null;
  private directoryAt = 0;
  private broadcastTimer: ReturnType<typeof setTimeout> | null = null;
  /** The last update asked for (running or waiting), and the one waiting for the running one (`broadcast`). */
  private updating: Promise<void> = Promise.resolve();
  private nextUpdate: Promise<void> | null = null;
  /** An update could not read the client list: the rows wait for its retry timer, whoever asks meanwhile. */
  private listRetry = false;
  private broadcastInterval = BROADCAST_MIN_INTERVAL_MS;
  private lastBroadcastAt = 0;
  private priming: Promise<void> | null = null;
  private readonly epoch = crypto.randomUUID();
  /** Rollups received in this epoch, and how many of them are in SQLite. */
  private received = 0;
  private savedThrough = 0;
  /** Client shards (`shardName`) whose rollup changed since the last checkpoint. */
  private readonly unsaved = new Set<string>();
  private checkpointTimer: ReturnType<typeof setTimeout> | null = null;
  /** Not on the top: rollups that changed what this shard holds since its last forward. */
  private readonly forwarding = new Map<string, ClientRollup>();
  /** Not on the top: clients renamed or moved to another zone since the last forward. */
  private readonly changedClients = new Set<string>();
  private forwardTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Not on the top: a forward is on its way. The next waits for its answer: a slow top would
   * otherwise get a new call every interval while the earlier ones still wait, more load on the
   * object that is already behind, and a queue of them that grows for as long as it stays slow.
   */
  private forwardInFlight = false;
  /**
   * Not on the top: forwards are at least this far apart, many clients' rollups in one call,
   * whatever the shard's own load (`forwardIntervalMs`). A rollup goes at once when the last forward
   * is that old: relays come about every 100 ms, and waiting a whole interval after each one cost
   * the overview ~100 ms (docs/live.md).
   */
  private readonly forwardInterval: number;
  private lastForwardAt = 0;
  /** On the top: the shards that ever forwarded to it (saved), and those this instance has gathered. */
  private readonly forwarders = new Set<number>();
  private readonly gathered = new Set<number>();
  /** On the top: when each shard whose gather failed may be asked again. */
  private readonly gatherRetryAt = new Map<number, number>();
  /** On the top: whether this instance has sent its viewers rows (maybe without an ungathered shard's). */
  private shown = false;
  private gathering: Promise<void> | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.shard = Number(ctx.id.name?.split("-").at(-1) ?? TOP_SHARD);
    this.top = this.shard === TOP_SHARD;
    this.forwardInterval = forwardIntervalMs(overviewShards(env));
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
      let newest = 0;
      for (const r of this.sql.exec<{ client_id: string; day: string; today: string; minutes: string; at: number }>("SELECT * FROM rollups")) {
        const { clientId, shard } = splitShardName(r.client_id);
        const rollup: ClientRollup = { client_id: clientId, day: r.day, today: JSON.parse(r.today), minutes: JSON.parse(r.minutes), at: r.at };
        if (shard > 0) rollup.shard = shard;
        this.shardRollups(clientId).set(shard, rollup);
        newest = Math.max(newest, r.at);
      }
      if (!this.top) {
        for (const byShard of this.rollups.values()) {
          for (const r of byShard.values()) if (r.at >= newest - RESEND_ON_START_MS) this.queueForward(r);
        }
      }
      const saved = this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'forwarders'").toArray()[0];
      for (const s of saved ? (JSON.parse(saved.value) as number[]) : []) this.forwarders.add(s);
    });
  }

  /**
   * Holds a client's latest counters (saved with the next checkpoint) and schedules one coalesced
   * update for the viewers.
   */
  async rollup(update: ClientRollup): Promise<RollupReceipt> {
    const receipt = { epoch: this.epoch, n: ++this.received, savedThrough: this.savedThrough };
    this.hold(update);
    return receipt;
  }

  /**
   * Rollups the ingest Worker relayed, many clients' in one call (workers/ingest/rollup-relay.ts).
   * No receipts: their senders do not hear back, and resend their whole hour from the flush alarm.
   */
  relayed(updates: ClientRollup[]): void {
    for (const u of updates) this.hold(u);
  }

  /**
   * A client's name or time zone changed (`PATCH /v1/admin/clients/:id`): holds the client's rollups
   * as its objects now count them and has the top read the client list again, so its row shows the
   * new name and the new zone's "today" at once, not after its next event (a quiet client's row read
   * zero for "today" when the new zone's date was not the one its last rollup was counted in).
   */
  async clientChanged(clientId: string, rollups: ClientRollup[]): Promise<void> {
    for (const r of rollups) this.hold(r);
    if (this.top) {
      this.refreshClient(clientId);
      return;
    }
    this.changedClients.add(clientId);
    await this.forward();
  }

  /**
   * On the top: what another shard's clients' rollups changed (values, merged like any rollup; that
   * shard saves them), and the clients whose name or zone changed.
   */
  forwarded(from: number, updates: ClientRollup[], changedClients: string[]): void {
    if (!this.forwarders.has(from)) {
      this.forwarders.add(from);
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('forwarders', ?)", JSON.stringify([...this.forwarders]));
    }
    for (const u of updates) this.hold(u, false);
    for (const id of changedClients) this.refreshClient(id);
  }

  /**
   * Not on the top: every rollup this shard holds, for a top that started since it last heard them all.
   * The top gathers at its first viewer, which is also when this shard's clients are primed.
   */
  held(): ClientRollup[] {
    void this.loadDirectory(0)
      .then((directory) => this.primeMissing(directory))
      .catch((err) => logLine("warn", "overview_prime_failed", { overview_shard: this.shard }, err));
    return [...this.rollups.values()].flatMap((byShard) => [...byShard.values()]);
  }

  private refreshClient(clientId: string): void {
    this.directoryAt = 0;
    // Sent again even if its row did not change: a viewer that connected while it was inactive has none.
    this.sent.delete(clientId);
    if (this.ctx.getWebSockets().length === 0) return;
    this.relisted.add(clientId);
    this.markDirty(clientId);
  }

  private shardRollups(clientId: string): Map<number, ClientRollup> {
    let byShard = this.rollups.get(clientId);
    if (!byShard) this.rollups.set(clientId, (byShard = new Map()));
    return byShard;
  }

  /** `save`: the rollup is of this shard's clients (the top does not save what it was forwarded). */
  private hold(update: ClientRollup, save = true): void {
    const r = this.merge(update);
    if (!r) {
      // A woken top's first gather may have taken this rollup in while its forward was on the way:
      // viewers were last sent the row before the wake, and the gather broadcast nothing.
      if (this.top && !this.sent.has(update.client_id) && this.ctx.getWebSockets().length > 0) this.markDirty(update.client_id);
      return;
    }
    if (save) {
      this.unsaved.add(shardName(r.client_id, update.shard ?? 0));
      this.checkpointTimer ??= setTimeout(() => this.checkpoint(), CHECKPOINT_INTERVAL_MS);
    }
    if (!this.top) {
      this.queueForward(update);
      return;
    }
    if (this.ctx.getWebSockets().length === 0) {
      // Nobody saw this row: the next viewer gets it in its snapshot, so forget what was sent.
      this.sent.delete(r.client_id);
      return;
    }
    this.markDirty(r.client_id);
  }

  /** Merges a rollup into what this object holds: the merged rollup, or null when it added nothing. */
  private merge(update: ClientRollup): ClientRollup | null {
    const shard = update.shard ?? 0;
    const byShard = this.shardRollups(update.client_id);
    const known = byShard.get(shard);
    const r = mergeRollup(known, update);
    if (r === known) return null;
    byShard.set(shard, r);
    return r;
  }

  private queueForward(update: ClientRollup): void {
    addRollup(this.forwarding, update);
    // A timer even when due now: the other rollups of the same relayed call go in the same forward.
    this.forwardTimer ??= setTimeout(() => void this.forward(), Math.max(0, this.lastForwardAt + this.forwardInterval - Date.now()));
  }

  /**
   * Sends the top what changed since the last forward, in one call. A failed call keeps it for the
   * next try (merged with what comes meanwhile), so the top misses nothing while this instance lives.
   */
  private async forward(): Promise<void> {
    if (this.forwardTimer) clearTimeout(this.forwardTimer);
    this.forwardTimer = null;
    // What comes meanwhile goes, merged, once the forward on its way is answered (below).
    if (this.forwardInFlight) return;
    const updates = [...this.forwarding.values()];
    const changed = [...this.changedClients];
    this.forwarding.clear();
    this.changedClients.clear();
    if (updates.length === 0 && changed.length === 0) return;
    this.lastForwardAt = Date.now();
    this.forwardInFlight = true;
    try {
      await within(overviewShardStub(this.env, TOP_SHARD).forwarded(this.shard, updates, changed), FORWARD_TIMEOUT_MS, "the top's forwarded()");
    } catch (err) {
      for (const u of updates) addRollup(this.forwarding, u);
      for (const id of changed) this.changedClients.add(id);
      this.forwardTimer ??= setTimeout(() => void this.forward(), FORWARD_RETRY_MS);
      logLine("warn", "overview_forward_failed", { overview_shard: this.shard, clients: updates.length }, err);
    } finally {
      this.forwardInFlight = false;
    }
    if (this.forwarding.size > 0 || this.changedClients.size > 0) {
      this.forwardTimer ??= setTimeout(() => void this.forward(), Math.max(0, this.lastForwardAt + this.forwardInterval - Date.now()));
    }
  }

  /**
   * On the top: asks each shard that forwards to it for all it holds, once per instance of the top (a
   * restarted top holds only its own clients' saved rollups). Before anything is shown, so a viewer
   * never sees a quiet client of another shard at zero. A shard that fails or hangs is left out for
   * GATHER_RETRY_MS, so that it holds up neither the viewers nor every broadcast; what a shard hands
   * over after this instance has shown rows is broadcast, since those rows were without it.
   */
  private gatherForwarders(): Promise<void> {
    const now = Date.now();
    const missing = [...this.forwarders].filter((s) => !this.gathered.has(s) && now >= (this.gatherRetryAt.get(s) ?? 0));
    if (missing.length === 0) return Promise.resolve();
    this.gathering ??= Promise.all(
      missing.map(async (s) => {
        try {
          const held = await within(overviewShardStub(this.env, s).held(), GATHER_TIMEOUT_MS, `overview-${s}'s held()`);
          // Before this instance has shown rows a gather broadcasts nothing: sockets open now were
          // sent all of it, since every change reaches the top as a forward (even in hibernation,
          // which a forward ends); a change whose forward was on its way shows when it lands (`hold`).
          const late = this.shown && this.ctx.getWebSockets().length > 0;
          for (const r of held) {
            const merged = this.merge(r);
            if (merged && late) this.markDirty(merged.client_id);
          }
          this.gathered.add(s);
          this.gatherRetryAt.delete(s);
        } catch (err) {
          this.gatherRetryAt.set(s, Date.now() + GATHER_RETRY_MS);
          logLine("warn", "overview_gather_failed", { overview_shard: s }, err);
        }
      }),
    ).then(() => void (this.gathering = null));
    return this.gathering;
  }

  /** Which instance this is and what it has saved, for a ClientCounter holding an older receipt. */
  saved(): RollupReceipt {
    return { epoch: this.epoch, n: 0, savedThrough: this.savedThrough };
  }

  /**
   * Writes the rollups changed since the last checkpoint, one row per client, in statements of at
   * most CHECKPOINT_STATEMENT_BYTES of rows each. What a statement could not write waits for the next
   * checkpoint, armed now: nothing else may come to arm it.
   */
  private checkpoint(): void {
    if (this.checkpointTimer) clearTimeout(this.checkpointTimer);
    this.checkpointTimer = null;
    const through = this.received;
    for (const { keys, json } of this.unsavedStatements()) {
      try {
        this.sql.exec(
          `INSERT INTO rollups (client_id, day, today, minutes, at)
           SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4 FROM json_each(?) AS j WHERE true
           ON CONFLICT (client_id) DO UPDATE SET day = excluded.day, today = excluded.today, minutes = excluded.minutes, at = excluded.at`,
          json,
        );
        for (const key of keys) this.unsaved.delete(key);
      } catch (err) {
        logLine("warn", "overview_checkpoint_failed", { overview_shard: this.shard, clients: keys.length }, err);
      }
    }
    if (this.unsaved.size > 0) {
      this.checkpointTimer = setTimeout(() => this.checkpoint(), CHECKPOINT_INTERVAL_MS);
      return;
    }
    this.savedThrough = through;
  }

  /** The unsaved rows as JSON arrays of at most CHECKPOINT_STATEMENT_BYTES each, with the keys each holds. */
  private unsavedStatements(): { keys: string[]; json: string }[] {
    const statements: { keys: string[]; rows: string[]; bytes: number }[] = [];
    for (const key of this.unsaved) {
      const { clientId, shard } = splitShardName(key);
      const r = this.rollups.get(clientId)!.get(shard)!;
      const row = JSON.stringify([key, r.day, JSON.stringify(r.today), JSON.stringify(r.minutes), r.at]);
      const size = utf8.encode(row).byteLength + 1;
      let last = statements.at(-1);
      if (!last || last.bytes + size > CHECKPOINT_STATEMENT_BYTES) statements.push((last = { keys: [], rows: [], bytes: 0 }));
      last.keys.push(key);
      last.rows.push(row);
      last.bytes += size;
    }
    return statements.map(({ keys, rows }) => ({ keys, json: `[${rows.join(",")}]` }));
  }

  /**
   * A timer even when an update is due now: the other rollups of the same call go in the same update.
   * Due once the interval since the last update has passed, not an interval after the first change:
   * rollups come in forwards and relays about every 100 ms, and waiting a whole interval after each
   * cost the overview that much again (docs/live.md).
   */
  private markDirty(clientId: string, delayMs = Math.max(0, this.lastBroadcastAt + this.broadcastInterval - Date.now())): void {
    this.dirty.add(clientId);
    this.broadcastTimer ??= setTimeout(() => void this.broadcast(), delayMs);
  }

  /** The WebSocket upgrade, already authenticated by the Worker, which states the viewer's scope. */
  override async fetch(request: Request): Promise<Response> {
    if (!this.top) return Response.json(errorBody("wrong_shard", `live sockets are served by overview-${TOP_SHARD}`), { status: 421 });
    const scope = parseScope(request.headers.get(LIVE_SCOPE_HEADER));
    if (!scope) return Response.json(errorBody("invalid_scope", "the Worker did not state a valid viewer scope"), { status: 400 });
    const unknown = scope !== "*" && scope.some((id) => !this.directory?.has(id));
    // A client created moments before and heard from while nobody watched (its rollups held, nothing
    // broadcast) would miss the snapshot of a list read just before it existed, and appear only with
    // its next event: such rollups make the list be read again (an inactive client's held rollups do
    // too: one D1 read per connect, as most connects make anyway).
    await this.gatherForwarders();
    const unheard = [...this.rollups.keys()].some((id) => !this.directory?.has(id));
    const directory = await this.loadDirectory(unknown || unheard ? 0 : SNAPSHOT_DIRECTORY_AGE_MS);
    const state: ViewerState = { sid: crypto.randomUUID(), all: scope === "*" };
    const response = acceptLiveSocket(this.ctx, request, state, (ws) => {
      // Only an accepted socket's close forgets its scope: a refused upgrade must not leave one.
      if (scope !== "*") {
        this.sql.exec("INSERT INTO viewers (sid, clients) VALUES (?, ?)", state.sid, JSON.stringify(scope));
        this.scopes.set(state.sid, new Set(scope));
      }
      this.sendSnapshot(ws, state, directory, Date.now());
      this.shown = true;
    });
    void this.primeMissing(directory);
    await this.armMinuteTick();
    return response;
  }

  /** Every minute while someone watches: "current minute" and "last hour" move even without events. */
  override async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    this.forgetDroppedViewers(sockets);
    if (sockets.length === 0) return;
    // Before the rows are marked: a woken top holds only its own clients until it gathers the other
    // shards', whose quiet clients' minutes must move too.
    await this.gatherForwarders();
    for (const id of this.rollups.keys()) this.dirty.add(id);
    await this.broadcast();
    await this.armMinuteTick();
  }

  override async webSocketMessage(ws: WebSocket): Promise<void> {
    this.forget(ws);
    refuseViewerMessage(ws);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.forget(ws);
    closeQuietly(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.forget(ws);
  }

  /**
   * Scopes of sockets that ended without a close event (a deploy or a crash drops them unannounced)
   * would stay in `viewers` for good: each minute tick deletes those no open socket holds. Read one
   * by one, not bound as one list, which could pass the 2 MB a bound value may hold.
   */
  private forgetDroppedViewers(sockets: WebSocket[]): void {
    const open = new Set(sockets.map((ws) => viewerState(ws)?.sid));
    for (const { sid } of this.sql.exec<{ sid: string }>("SELECT sid FROM viewers").toArray()) {
      if (open.has(sid)) continue;
      this.scopes.delete(sid);
      this.sql.exec("DELETE FROM viewers WHERE sid = ?", sid);
    }
  }

  private forget(ws: WebSocket): void {
    const state = viewerState(ws);
    if (!state || state.all) return;
    this.scopes.delete(state.sid);
    this.sql.exec("DELETE FROM viewers WHERE sid = ?", state.sid);
  }

  /**
   * One update at a time: an update waits for D1 (the client list, the sessions check) after it has
   * computed its rows, so one that overlapped it could send newer rows first and have them replaced
   * by older ones, which `sent` then kept from being corrected. An update asked for while one runs
   * runs after it, with every row marked meanwhile.
   */
  private broadcast(): Promise<void> {
    const run = () => {
      this.nextUpdate = null;
      return this.update();
    };
    // After a failed update too: one that threw must not stop every later one.
    this.nextUpdate ??= this.updating = this.updating.then(run, run);
    return this.nextUpdate;
  }

  private async update(): Promise<void> {
    if (this.listRetry) return;
    // The minute tick calls this at once: a timer left pending would start a second chain of updates.
    if (this.broadcastTimer) clearTimeout(this.broadcastTimer);
    this.broadcastTimer = null;
    // From the start: changes that come while this one waits for the shards or the client list are
    // the next update's, an interval later, not a second one at once.
    this.lastBroadcastAt = Date.now();
    await this.gatherForwarders();
    const ids = [...this.dirty];
    this.dirty.clear();
    const listedBefore = new Set(ids.filter((id) => this.directory?.has(id)));
    const unknown = ids.length > listedBefore.size;
    const asked = Date.now();
    let directory: Map<string, DirectoryEntry>;
    try {
      directory = await this.loadDirectory(unknown ? UNKNOWN_CLIENT_DIRECTORY_AGE_MS : DIRECTORY_AGE_MS);
    } catch (err) {
      // The rows wait, with what changes meanwhile, for a try a second later, in place of any timer a
      // rollup armed meanwhile or update waiting for this one: while D1 is down the top reads it once
      // a second, not once per update.
      logLine("warn", "overview_broadcast_failed", { clients: ids.length }, err);
      for (const id of ids) this.dirty.add(id);
      if (this.broadcastTimer) clearTimeout(this.broadcastTimer);
      this.listRetry = true;
      this.broadcastTimer = setTimeout(() => {
        this.listRetry = false;
        void this.broadcast();
      }, BROADCAST_RETRY_MS);
      return;
    }
    const reloaded = this.directoryAt >= asked;
    const now = Date.now();
    const changed: OverviewRow[] = [];
    const gone: string[] = [];
    for (const id of ids) {
      const relisted = this.relisted.delete(id);
      if (!directory.has(id)) {
        if (listedBefore.has(id) || relisted) gone.push(id);
        // A client created moments ago: try again once the list may be re-read. Inactive ones drop out.
        else if (!reloaded) this.markDirty(id, UNKNOWN_CLIENT_DIRECTORY_AGE_MS);
        continue;
      }
      const row = this.row(id, directory, now);
      const text = JSON.stringify(row);
      if (this.sent.get(id) === text) continue;
      this.sent.set(id, text);
      changed.push(row);
    }
    if (gone.length > 0) await this.resnapshot(gone, directory, now);
    if (changed.length === 0) return;
    this.broadcastInterval = broadcastIntervalAfter(changed.length);
    const everything = messagesOf(changed, "update");
    const byClient = new Map(changed.map((r) => [r.client_id, r]));
    // Viewers who may see the same changed rows (a client's staff, each with the page open) get the
    // same text: each set's messages are built once per update, not once per socket.
    const textsOf = new Map<string, string[]>();
    for (const ws of await openSockets(this.ctx, this.env.DB, (ended) => this.forget(ended))) {
      const state = viewerState(ws);
      if (!state) continue;
      const texts = state.all ? everything : updateTexts(textsOf, this.visibleRows(state, changed, byClient));
      for (const text of texts) sendQuietly(ws, text);
      this.shown = true;
    }
  }

  /** `ws`'s snapshot: a row for each client of the list it may see, as the first message's and the updates after it. */
  private sendSnapshot(ws: WebSocket, state: ViewerState, directory: Map<string, DirectoryEntry>, now: number): void {
    const rows = [...directory.keys()].filter((id) => this.visible(state, id)).map((id) => this.row(id, directory, now));
    for (const message of messagesOf(rows, "snapshot")) sendQuietly(ws, message);
  }

  /**
   * Clients gone from the list (suspended) leave the screens of the viewers who could see them: an
   * update only adds or replaces rows, so those viewers get a fresh snapshot, which replaces them all.
   * An admin's change, so rare; the row stayed, frozen, until the viewer reconnected.
   */
  private async resnapshot(gone: string[], directory: Map<string, DirectoryEntry>, now: number): Promise<void> {
    for (const ws of await openSockets(this.ctx, this.env.DB, (ended) => this.forget(ended))) {
      const state = viewerState(ws);
      if (state && gone.some((id) => this.visible(state, id))) this.sendSnapshot(ws, state, directory, now);
    }
  }

  /**
   * The changed rows a scoped viewer may see, by going over its clients or over the rows, whichever
   * are fewer: thousands of viewers of a client or two each cost a lookup or two apiece per update,
   * not a pass over every changed row.
   */
  private visibleRows(state: ViewerState, changed: OverviewRow[], byClient: Map<string, OverviewRow>): OverviewRow[] {
    const scope = this.scopeOf(state);
    if (scope.size >= changed.length) return changed.filter((r) => scope.has(r.client_id));
    const rows: OverviewRow[] = [];
    for (const id of scope) {
      const row = byClient.get(id);
      if (row) rows.push(row);
    }
    return rows;
  }

  private visible(state: ViewerState, clientId: string): boolean {
    return state.all || this.scopeOf(state).has(clientId);
  }

  private scopeOf(state: ViewerState): Set<string> {
    let scope = this.scopes.get(state.sid);
    if (!scope) {
      // After a wake from hibernation the in-memory cache is empty; SQLite has the list.
      const stored = this.sql.exec<{ clients: string }>("SELECT clients FROM viewers WHERE sid = ?", state.sid).toArray()[0];
      scope = new Set(stored ? (JSON.parse(stored.clients) as string[]) : []);
      this.scopes.set(state.sid, scope);
    }
    return scope;
  }

  private row(clientId: string, directory: Map<string, DirectoryEntry>, now: number): OverviewRow {
    const entry = directory.get(clientId)!;
    const shards = [...(this.rollups.get(clientId)?.values() ?? [])];
    const first = hourStart(now);
    const minute = emptyCounts();
    const hour = emptyCounts();
    const spark = new Array<number>(HOUR_MINUTES).fill(0);
    for (const m of shards.flatMap((r) => r.minutes)) {
      const slot = (m.minute - first) / MINUTE_MS;
      if (slot < 0 || slot >= HOUR_MINUTES) continue;
      for (const s of STATUSES) {
        hour[s] += m[s];
        spark[slot]! += m[s];
        if (slot === HOUR_MINUTES - 1) minute[s] += m[s];
      }
    }
    const day = localDate(now, entry.timezone);
    const today = sumCounts(shards.filter((r) => r.day === day).map((r) => r.today));
    return { client_id: clientId, name: entry.name, minute, hour, today, spark };
  }

  private async loadDirectory(maxAgeMs: number): Promise<Map<string, DirectoryEntry>> {
    if (this.directory && Date.now() - this.directoryAt < maxAgeMs) return this.directory;
    const rows = await drizzle(this.env.DB)
      .select({ id: clients.id, name: clients.name, timezone: clients.timezone, shards: clients.shards })
      .from(clients)
      .where(eq(clients.active, true))
      .orderBy(clients.id);
    this.directory = new Map(rows.map((r) => [r.id, { name: r.name, timezone: r.timezone, shards: r.shards }]));
    this.directoryAt = Date.now();
    return this.directory;
  }

  /**
   * Once in a shard's life (the top's first viewer, e.g. right after the deploy that created it, or
   * the top's first gather of another shard), asks the ClientCounters of the shard's clients it never
   * heard from for a rollup, so "today" is right from the start. Afterwards every client with events
   * reports by itself.
   */
  private primeMissing(directory: Map<string, DirectoryEntry>): Promise<void> {
    if (this.sql.exec("SELECT 1 FROM meta WHERE key = 'primed'").toArray().length > 0) return Promise.resolve();
    this.priming ??= (async () => {
      const missing = [...directory]
        .filter(([id]) => overviewShard(id, overviewShards(this.env)) === this.shard)
        .flatMap(([id, e]) => Array.from({ length: e.shards }, (_, shard) => ({ id, timezone: e.timezone, shard })))
        .filter(({ id, shard }) => !this.rollups.get(id)?.has(shard));
      await mapBounded(missing, PRIME_FANOUT, async ({ id, timezone, shard }) => {
        try {
          await this.rollup(await counterOf(this.env, id, shard).liveRollup(id, timezone, shard));
        } catch (err) {
          logLine("warn", "overview_prime_failed", { client_id: id, shard }, err);
        }
      });
      // Primed rollups must not wait for the checkpoint: once flagged, priming never runs again.
      this.checkpoint();
      this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('primed', ?)", String(Date.now()));
    })().finally(() => (this.priming = null));
    return this.priming;
  }

  private async armMinuteTick(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) !== null) return;
    await this.ctx.storage.setAlarm(minuteOf(Date.now()) + MINUTE_MS + MINUTE_TICK_DELAY_MS);
  }
}

/** A viewer socket's state; null for a socket that has none. */
function viewerState(ws: WebSocket): ViewerState | null {
  const state = attachmentOf<ViewerState>(ws);
  return state.sid === undefined ? null : (state as ViewerState);
}

function parseScope(header: string | null): "*" | string[] | null {
  if (header === "*") return "*";
  try {
    const ids: unknown = JSON.parse(header ?? "");
    return Array.isArray(ids) && ids.every((x) => typeof x === "string") ? (ids as string[]) : null;
  } catch {
    return null;
  }
}

/** The update messages of `rows`, built once per distinct set of rows (`built` lives for one update). */
function updateTexts(built: Map<string, string[]>, rows: OverviewRow[]): string[] {
  const key = rows.map((r) => r.client_id).join("\n");
  let texts = built.get(key);
  if (!texts) built.set(key, (texts = messagesOf(rows, "update")));
  return texts;
}

/** `rows` as messages of at most CHUNK_ROWS rows, the first of type `first` and the rest updates; a snapshot goes out even with no rows. */
function messagesOf(rows: OverviewRow[], first: "snapshot" | "update"): string[] {
  const out: string[] = [];
  for (let i = 0; i < rows.length || (i === 0 && first === "snapshot"); i += CHUNK_ROWS) {
    out.push(JSON.stringify({ type: i === 0 ? first : "update", clients: rows.slice(i, i + CHUNK_ROWS) } satisfies OverviewLiveMessage));
  }
  return out;
}
