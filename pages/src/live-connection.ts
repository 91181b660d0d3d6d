import { signal } from "@preact/signals";
import type { z } from "zod";
import type { LiveTicket, LiveTicketRequest } from "../../schema/live.ts";
import { ApiFailure, postJson, socketUrl } from "./api.ts";

type LiveTicketAsk = z.input<typeof LiveTicketRequest>;

export type LiveStatus = "connecting" | "live" | "offline";

/** Backoff between reconnects: 0.5 s doubling to 30 s, with jitter so a fleet of tabs spreads out. */
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** Keeps idle proxies from closing the socket; the Durable Object answers without waking up. */
const PING_EVERY_MS = 30_000;
/**
 * A dead network often closes nothing: the browser keeps the socket "open" for minutes. A ping with no
 * pong (or any other message) within this long means the socket is gone.
 */
const PONG_TIMEOUT_MS = 10_000;

/**
 * One live WebSocket that reconnects with backoff. Every connection asks for a fresh one-use ticket
 * (same origin or not), and the server's first message after a reconnect is a snapshot, so the models
 * resync from it rather than patching over the gap.
 */
export class LiveConnection {
  readonly status = signal<LiveStatus>("connecting");
  /** Why the server refused the stream (no access, unknown client); no retry follows. */
  readonly refusal = signal<ApiFailure | null>(null);
  private ws: WebSocket | null = null;
  /** Consecutive failed connects, for the backoff. */
  private failures = 0;
  /**
   * Bumped by every connect and by stop(): an attempt still waiting for its ticket when a newer one
   * began (or the page left) must not open a socket.
   */
  private generation = 0;
  private running = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly path: string,
    private readonly clientId: string | undefined,
    private readonly onMessage: (data: unknown) => void,
  ) {}

  start(): void {
    this.stop();
    this.running = true;
    this.failures = 0;
    this.refusal.value = null;
    addEventListener("offline", this.lost);
    addEventListener("online", this.onOnline);
    void this.connect();
  }

  stop(): void {
    this.generation += 1;
    this.running = false;
    removeEventListener("offline", this.lost);
    removeEventListener("online", this.onOnline);
    clearTimeout(this.retryTimer);
    this.drop();
  }

  /** The socket is gone (closed, silent, or the browser went offline): drop it and reconnect with backoff. */
  private readonly lost = (): void => {
    this.drop();
    this.retry();
  };

  /** Back online: no reason to sit out the rest of a backoff. */
  private readonly onOnline = (): void => {
    if (this.status.value !== "live") void this.connect();
  };

  private async connect(): Promise<void> {
    clearTimeout(this.retryTimer);
    this.drop();
    const generation = ++this.generation;
    this.status.value = this.failures === 0 ? "connecting" : "offline";
    let ticket: string;
    try {
      const asked: LiveTicketAsk = this.clientId ? { client_id: this.clientId } : {};
      ticket = (await postJson<LiveTicket>("/v1/live/ticket", asked)).ticket;
    } catch (err) {
      if (generation !== this.generation) return;
      // Signed out or no access: retrying cannot help, and the app shows the login or the refusal.
      if (err instanceof ApiFailure && err.status >= 400 && err.status < 500) {
        this.stop();
        this.refusal.value = err;
        return;
      }
      return this.retry();
    }
    if (generation !== this.generation) return;
    const ws = new WebSocket(socketUrl(this.path, ticket));
    this.ws = ws;
    ws.onopen = () => {
      this.failures = 0;
      this.status.value = "live";
      this.pingTimer = setInterval(() => this.ping(ws), PING_EVERY_MS);
    };
    ws.onmessage = (e) => {
      clearTimeout(this.pongTimer);
      if (e.data !== "pong") this.onMessage(JSON.parse(e.data as string));
    };
    // Any close is retried, 4401 too (the session this socket was opened with ended, say by a cookie
    // rotation): the next ticket tells whether the user's current session holds, and a 401 signs out.
    ws.onclose = this.lost;
  }

  private ping(ws: WebSocket): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send("ping");
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(this.lost, PONG_TIMEOUT_MS);
  }

  /** Forgets the current socket: its late events must not touch the state or start another retry. */
  private drop(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.close(1000, "leaving");
  }

  private retry(): void {
    if (!this.running) return;
    // An attempt waiting for its ticket is superseded by the one scheduled here.
    this.generation += 1;
    this.status.value = "offline";
    const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this.failures);
    this.failures += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), base / 2 + Math.random() * (base / 2));
  }
}
