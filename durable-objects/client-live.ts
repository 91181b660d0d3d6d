import { errorBody, type MinuteCounts, type StatusCounts } from "../schema/api.ts";
import type { NotificationEvent } from "../schema/event.ts";
import { hourStart, type ClientLiveMessage } from "../schema/live.ts";
import { MINUTE_MS, localDate, minuteOf } from "../schema/time.ts";
import { counterOf, sumCounts, sumMinutes } from "./client-shards.ts";
import { BROADCAST_INTERVAL_MS } from "./broadcast-interval.ts";
import { LIVE_CLIENT_HEADER, LIVE_SHARDS_HEADER, LIVE_TIMEZONE_HEADER, acceptLiveSocket, attachmentOf, openSockets, sendQuietly } from "./live-sockets.ts";
import { overviewOf } from "./overview-shards.ts";
import type { ClientRollup, RollupReceipt } from "./rollups.ts";
import { logLine } from "../workers/log.ts";
import { within } from "../workers/concurrency.ts";

/** How long shard 0 waits for another shard's live rollup before it gives up the round (as the Overview's gathers do). */
const SHARD_ANSWER_TIMEOUT_MS = 2_000;
/**
 * How long a rollup or a `saved()` may take the Overview (a copy into or out of its memory,
 * milliseconds) before it counts as failed: the flush alarm awaits `settle`, and the runtime runs an
 * object's next alarm only once this one returns, so an Overview that hangs would hold every later
 * lake flush of each of its clients. A rollup that lands late is harmless: rollups are values, and
 * the minutes are sent again.
 */
const OVERVIEW_ANSWER_TIMEOUT_MS = 2_000;
/**
 * The object's own rollups — for a caller that does not relay (a direct call), the retry after a
 * failed send, the whole hour after an Overview restart — go out at most this often per client.
 */
const ROLLUP_INTERVAL_MS = 1_000;
/**
 * How long after shard 0's last round a shard of a sharded client still notes which of its minutes
 * beyond the hour change: well past the longest gap between rounds (answers time out after 2 s, a D1
 * check may come first), and what it holds meanwhile is a few minute numbers.
 */
const ROUND_WATCH_MS = 60_000;

/** What the live layer reads from the ClientCounter's counters. */
export interface CounterReader {
  counters(from: number, to: number): MinuteCounts[];
  today(timezone: string): StatusCounts;
  /** The client's shard count as this object serves it, once stated (null: not stated). */
  statedShards(): number | null;
  /** The client's time zone as this object was last told it (null: never told): an admin's change reaches it before any new socket. */
  statedTimezone(): string | null;
}

/** A shard's rollup as shard 0's round gets it: `older` answers the minutes beyond the hour the round reads. */
export interface ShardRollup extends ClientRollup {
  older?: {
    /** This shard's counts of the minutes the round reads (those with events). */
    minutes: MinuteCounts[];
    /** This shard's minutes beyond the hour changed since a round last read them. */
    changed: number[];
  };
}

/** Kept on each hibernatable socket (serializeAttachment), so it survives eviction. */
interface ClientSocketState {
  clientId: string;
  timezone: string;
  /** The client's shard count in D1 when the socket connected: what shows unless the object states its own. */
  shards: number;
}

/** The client (and which shard of it this object is) as the live layer names it in rollups. */
export interface LiveClient {
  id: string;
  timezone: string;
  shard: number;
}

/**
 * The ClientCounter's live side: WebSockets through the Hibernation API, one coalesced `update` per
 * broadcast interval after ingest (only while a socket is open), and rollups to the Overview:
 * handed back with each ingest call's result for the Worker to relay.
 *
 * Nothing here writes to SQLite: ingest only marks minutes dirty in memory. If the object is evicted
 * with dirty minutes, the next ingest marks them again; a browser that missed an update resyncs
 * from the snapshot it gets on reconnect.
 */
export class ClientLive {
  private readonly dirty = new Set<number>();
  private client: LiveClient | null = null;
  private broadcastTimer: ReturnType<typeof setTimeout> | null = null;
  private lastBroadcastAt = 0;
  private rollupTimer: ReturnType<typeof setTimeout> | null = null;
  /** Minutes changed since the last rollup the Overview accepted: a rollup carries only these. */
  private readonly rollupMinutes = new Set<number>();
  private lastRollupAt = 0;
  /**
   * Whether the next rollup carries the whole hour rather than the changed minutes: after a wake
   * (rollups sent before it may be lost with an Overview restart) and when the Overview restarted
   * before saving a rollup (its receipt's epoch changed).
   */
  private wholeHour = true;
  /** The receipt of the last rollup, until the Overview is known to have saved it. */
  private unsaved: RollupReceipt | null = null;
  /**
   * A rollup went out with an ingest call's result since the last settle: the Worker relays it and
   * nobody hears whether it arrived, so the flush alarm sends the whole hour.
   */
  private handedOff = false;
  /**
   * A sharded client's view: what its viewers were last sent, those still owed a snapshot, and the
   * minutes beyond the hour some shard reported changed, which the next round reads from every shard.
   */
  private readonly shardedView = {
    timer: null as ReturnType<typeof setTimeout> | null,
    minutes: new Map<number, string>(),
    today: "",
    unsnapped: new Set<WebSocket>(),
    older: new Set<number>(),
  };
  /**
   * While shard 0's rounds ask this shard: its minutes beyond the hour changed since a round last read
   * them (the rounds sum only the hour, so nothing else would tell the viewers), and when a round last asked.
   */
  private readonly olderChanges = { minutes: new Set<number>(), askedAt: 0 };

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly env: Env,
    private readonly reader: CounterReader,
  ) {}

  /** Accepts a WebSocket the Worker has already authorised for this client, and sends the snapshot. */
  upgrade(request: Request): Response {
    const clientId = request.headers.get(LIVE_CLIENT_HEADER);
    const timezone = request.headers.get(LIVE_TIMEZONE_HEADER);
    const shards = Number(request.headers.get(LIVE_SHARDS_HEADER) ?? 1);
    if (!clientId || !timezone || !Number.isInteger(shards) || shards < 1) return Response.json(errorBody("missing_live_headers", "the Worker did not state the client's live headers"), { status: 400 });
    const state: ClientSocketState = { clientId, timezone, shards };
    if ((this.reader.statedShards() ?? shards) === 1) return acceptLiveSocket(this.ctx, request, state, (ws) => sendQuietly(ws, JSON.stringify(this.snapshot(clientId, timezone))));
    return acceptLiveSocket(this.ctx, request, state, (ws) => {
      this.shardedView.unsnapped.add(ws);
      this.showShards(0);
    });
  }

  /**
   * The sockets' client when its counts live in several shards (they then all show the sum), else
   * null. The count and the zone this object holds win over those a socket connected with: an admin
   * change reaches the objects before D1 (docs/architecture.md, "Hot clients: shards"), and a zone
   * changed while viewers watch reaches them through it.
   */
  private shardedSockets(sockets: WebSocket[]): ClientSocketState | null {
    const state = sockets[0] && (attachmentOf<ClientSocketState>(sockets[0]) as ClientSocketState);
    if (state?.clientId === undefined) return null;
    const shards = this.reader.statedShards() ?? state.shards;
    return shards > 1 ? { ...state, shards, timezone: this.reader.statedTimezone() ?? state.timezone } : null;
  }

  /**
   * While a sharded client is watched, its shard 0 asks the other shards for their last hour every
   * broadcast interval and sends viewers the minutes whose sums changed: the shards do not know who
   * watches, and asking only while someone does costs nothing when nobody does (one call per other
   * shard per interval while someone does). The pending timer keeps this object awake meanwhile.
   * A minute beyond the hour that changed in some shard reaches the viewers a round later: the round
   * that hears of it has only that shard's count, so the next reads it from every shard.
   */
  private showShards(delayMs = BROADCAST_INTERVAL_MS): void {
    this.shardedView.timer ??= setTimeout(() => void this.sendShardSums(), delayMs);
  }

  private async sendShardSums(): Promise<void> {
    const view = this.shardedView;
    const sockets = await openSockets(this.ctx, this.env.DB);
    // Only sockets gone since: one accepted while openSockets waited for D1 is not among `sockets`
    // and still needs its snapshot, from the next round.
    const listed = this.ctx.getWebSockets();
    for (const ws of view.unsnapped) if (!listed.includes(ws)) view.unsnapped.delete(ws);
    const state = this.shardedSockets(sockets);
    if (!state) {
      view.timer = null;
      view.minutes.clear();
      view.older.clear();
      return;
    }
    const now = Date.now();
    const older = [...view.older];
    try {
      // Every shard sums the same hour (shard 0's `now`: a minute turning during the calls would
      // otherwise drop the oldest minute from some shards' sums only). A shard that does not answer
      // fails the round, not the view: the next round asks again.
      const peers = await Promise.all(
        Array.from({ length: state.shards - 1 }, (_, i) =>
          within(counterOf(this.env, state.clientId, i + 1).liveRollup(state.clientId, state.timezone, i + 1, now, older), SHARD_ANSWER_TIMEOUT_MS, `shard ${i + 1}'s live rollup`),
        ),
      );
      const rollups = [this.rollup({ id: state.clientId, timezone: state.timezone, shard: 0 }, now, older), ...peers];
      const minutes = sumMinutes(rollups.map((r) => r.minutes));
      const today = sumCounts(rollups.map((r) => r.today));
      // A minute read that is still in the hour (its oldest, noted in case it left before this round) is among `minutes`.
      const first = hourStart(now);
      const olderSums = sumMinutes(rollups.map((r) => r.older?.minutes ?? [])).filter((m) => m.minute < first);
      for (const m of older) view.older.delete(m);
      for (const r of rollups) for (const m of r.older?.changed ?? []) view.older.add(m);
      const changed = [...olderSums, ...minutes.filter((m) => view.minutes.get(m.minute) !== JSON.stringify(m))];
      const todayText = JSON.stringify(today);
      view.minutes = new Map(minutes.map((m) => [m.minute, JSON.stringify(m)]));
      const update: ClientLiveMessage = { type: "update", client_id: state.clientId, minutes: changed, today };
      const snapshot = JSON.stringify({ ...update, type: "snapshot", minutes } satisfies ClientLiveMessage);
      const changedText = changed.length > 0 || todayText !== view.today ? JSON.stringify(update) : null;
      view.today = todayText;
      for (const ws of sockets) {
        if (view.unsnapped.delete(ws)) sendQuietly(ws, snapshot);
        else if (changedText) sendQuietly(ws, changedText);
      }
    } catch (err) {
      logLine("warn", "live_shards_failed", { client_id: state.clientId }, err);
    }
    view.timer = null;
    this.showShards();
  }

  /**
   * Called after an ingest transaction committed with `accepted` new events. Memory only. With
   * `handOff`, the rollup of this call's changes goes back to the caller, which relays it (the
   * ingest Worker merges a client's rollups and sends many clients' in one Overview call every
   * 100 ms) and is returned. Then no timer is left pending: a pending `setTimeout` makes the object
   * ineligible for hibernation, and a sending client's object was billed for duration all the time
   * it sent, only to throttle rollups (docs/capacity.md). Without `handOff` the rollup waits for the
   * object's own throttled timer.
   */
  changed(client: LiveClient, accepted: NotificationEvent[], handOff: boolean): ClientRollup | null {
    if (accepted.length === 0) return null;
    this.client = client;
    for (const e of accepted) this.rollupMinutes.add(minuteOf(e.occurred_at));
    this.noteOlderChanges(accepted);
    let rollup: ClientRollup | null = null;
    if (handOff) {
      if (this.rollupTimer) clearTimeout(this.rollupTimer);
      this.rollupTimer = null;
      rollup = this.takeRollup(this.client);
      this.handedOff = true;
    } else {
      this.scheduleRollup();
    }
    // Most clients have no viewer most of the time; a socket that connects later starts from a snapshot.
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return rollup;
    if (this.shardedSockets(sockets)) {
      this.showShards();
      return rollup;
    }
    for (const e of accepted) this.dirty.add(minuteOf(e.occurred_at));
    // A zero delay still fires after this turn, so the calls of one turn share one update.
    this.broadcastTimer ??= setTimeout(() => void this.broadcast(), Math.max(0, this.lastBroadcastAt + BROADCAST_INTERVAL_MS - Date.now()));
    return rollup;
  }

  /** Sends one `update` with every minute changed since the last one, then forgets them. */
  async broadcast(): Promise<void> {
    this.broadcastTimer = null;
    const client = this.client;
    const minutes = [...this.dirty];
    this.dirty.clear();
    if (!client || minutes.length === 0) return;
    const sockets = await openSockets(this.ctx, this.env.DB);
    if (sockets.length === 0) return;
    this.lastBroadcastAt = Date.now();
    const update: ClientLiveMessage = { type: "update", client_id: client.id, minutes: this.countsOf(minutes), today: this.reader.today(client.timezone) };
    const text = JSON.stringify(update);
    for (const ws of sockets) sendQuietly(ws, text);
  }

  /**
   * The counters the Overview keeps for this client (this shard of it): today plus the minutes of the
   * last hour. For shard 0's round, which reads the minutes `older` beyond the hour, their counts and
   * the minutes beyond the hour changed since a round last read them come too.
   */
  rollup(client: LiveClient, now = Date.now(), older?: number[]): ShardRollup {
    const rollup = this.rollupOf(client, now, this.lastHour(now));
    if (!older) return rollup;
    const noted = this.olderChanges;
    noted.askedAt = Date.now();
    // Read now, so only a later change is noted again; a round that fails reads them again (shard 0 keeps them until one succeeds).
    for (const m of older) noted.minutes.delete(m);
    return { ...rollup, older: { minutes: this.countsOf(older), changed: [...noted.minutes] } };
  }

  /**
   * Notes the minutes beyond the hour among `accepted` while shard 0's rounds ask for them, the
   * hour's oldest too: it may have left the hour by the next round.
   */
  private noteOlderChanges(accepted: NotificationEvent[]): void {
    const now = Date.now();
    if (now - this.olderChanges.askedAt > ROUND_WATCH_MS) return;
    const first = hourStart(now);
    for (const e of accepted) if (minuteOf(e.occurred_at) <= first) this.olderChanges.minutes.add(minuteOf(e.occurred_at));
  }

  /** Today plus the given minutes of the last hour (the ones that changed since the last rollup). */
  private changedRollup(client: LiveClient, minutes: number[], now = Date.now()): ClientRollup {
    const first = hourStart(now);
    return this.rollupOf(client, now, this.countsOf(minutes.filter((m) => m >= first)));
  }

  /** The counts of the given minutes that have events, in minute order. */
  private countsOf(minutes: number[]): MinuteCounts[] {
    if (minutes.length === 0) return [];
    const wanted = new Set(minutes);
    // A loop, not Math.min(...): a backfill watched live may dirty more minutes than a call takes arguments.
    let first = minutes[0]!;
    let last = first;
    for (const m of wanted) {
      if (m < first) first = m;
      else if (m > last) last = m;
    }
    return this.reader.counters(first, last + MINUTE_MS).filter((m) => wanted.has(m.minute));
  }

  private rollupOf(client: LiveClient, now: number, minutes: MinuteCounts[]): ClientRollup {
    const rollup: ClientRollup = { client_id: client.id, day: localDate(now, client.timezone), today: this.reader.today(client.timezone), minutes, at: now };
    if (client.shard > 0) rollup.shard = client.shard;
    return rollup;
  }

  /** The counters of the rolling hour up to the minute of `now`. */
  private lastHour(now: number): MinuteCounts[] {
    return this.reader.counters(hourStart(now), minuteOf(now) + MINUTE_MS);
  }

  private snapshot(clientId: string, timezone: string): ClientLiveMessage {
    return { type: "snapshot", client_id: clientId, minutes: this.lastHour(Date.now()), today: this.reader.today(timezone) };
  }

  private scheduleRollup(): void {
    if (this.rollupTimer) return;
    const wait = Math.max(0, this.lastRollupAt + ROLLUP_INTERVAL_MS - Date.now());
    this.rollupTimer = setTimeout(() => void this.pushRollup(), wait);
  }

  private async pushRollup(): Promise<void> {
    this.rollupTimer = null;
    const client = this.client;
    if (!client || (this.rollupMinutes.size === 0 && !this.wholeHour)) return;
    await this.send(client);
  }

  /** The changed minutes (or the whole hour) as a rollup, from now on no longer pending. */
  private takeRollup(client: LiveClient): ClientRollup {
    const whole = this.wholeHour;
    this.wholeHour = false;
    this.lastRollupAt = Date.now();
    const minutes = [...this.rollupMinutes];
    this.rollupMinutes.clear();
    return whole ? this.rollup(client) : this.changedRollup(client, minutes);
  }

  /** Sends the changed minutes (or the whole hour) and keeps the receipt; on failure, they wait for the next try. */
  private async send(client: LiveClient): Promise<void> {
    const whole = this.wholeHour;
    const minutes = [...this.rollupMinutes];
    try {
      this.noteReceipt(await within(overviewOf(this.env, client.id).rollup(this.takeRollup(client)), OVERVIEW_ANSWER_TIMEOUT_MS, "the Overview's rollup"));
    } catch (err) {
      // Values, not increments: resending these minutes (with any changed since) repairs the Overview.
      logLine("warn", "overview_rollup_failed", { client_id: client.id }, err);
      this.wholeHour ||= whole;
      for (const m of minutes) this.rollupMinutes.add(m);
      this.scheduleRollup();
    }
  }

  /** A rollup that landed in another Overview instance than the previous, unsaved one: that one may be lost. */
  private noteReceipt(receipt: RollupReceipt): void {
    if (this.unsaved && receipt.epoch !== this.unsaved.epoch) this.wholeHour = true;
    this.unsaved = receipt;
    if (this.wholeHour) this.scheduleRollup();
  }

  /**
   * Makes sure the Overview has saved this client's last rollup; resends the whole hour when it has
   * not, or when this object cannot tell (it woke since, or handed rollups to the Worker to relay).
   * The lake flush alarm calls it, at most a minute after a client's last events, so a client that
   * goes quiet right before an Overview restart or a lost relay is repaired too. False when the
   * Overview holds the rollup but has not saved it yet (a rollup of the last seconds) or could not
   * be asked: the caller asks again later.
   */
  async settle(client: LiveClient): Promise<boolean> {
    this.client ??= client;
    if (this.handedOff) {
      this.handedOff = false;
      this.wholeHour = true;
    }
    if (this.unsaved && !this.wholeHour) {
      let saved: RollupReceipt;
      try {
        saved = await within(overviewOf(this.env, client.id).saved(), OVERVIEW_ANSWER_TIMEOUT_MS, "the Overview's saved()");
      } catch (err) {
        logLine("warn", "overview_settle_failed", { client_id: client.id }, err);
        return false;
      }
      if (saved.epoch === this.unsaved.epoch) {
        if (saved.savedThrough < this.unsaved.n) return false;
        this.unsaved = null;
        return true;
      }
      this.wholeHour = true;
    }
    if (!this.wholeHour) return true;
    await this.send(client);
    // The whole hour just sent waits for the Overview's next checkpoint (or failed and waits for a retry).
    return false;
  }
}

