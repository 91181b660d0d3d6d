import { signal } from "@preact/signals";
import { ApiFailure, postJson, socketUrl } from "./api.ts";

export type LiveStatus = "connecting" | "live" | "offline";

/** Backoff between reconnects: 0.5 s doubling to 30 s, with jitter so a fleet of tabs spreads out. */
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** Keeps idle proxies from closing the socket; the Durable Object answers without waking up. */
const PING_EVERY_MS = 30_000;

/**
 * One live WebSocket that reconnects with backoff. Every connection asks for a fresh one-use ticket
 * (same origin or not), and the server's first message after a reconnect is a snapshot, so the models
 * resync from it rather than patching over the gap.
 */
export class LiveConnection {
  readonly status = signal<LiveStatus>("connecting");
  /** Why the server refused the stream (no access, unknown client); no retry follows. */
  readonly refusal = signal<string | null>(null);
  private ws: WebSocket | null = null;
  private attempts = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly clientId: string | undefined,
    private readonly onMessage: (data: unknown) => void,
  ) {}

  start(): void {
    this.stopped = false;
    this.refusal.value = null;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.ws?.close(1000, "leaving");
    this.ws = null;
  }

  private async connect(): Promise<void> {
    this.status.value = this.attempts === 0 ? "connecting" : "offline";
    let ticket: string;
    try {
      ticket = (await postJson<{ ticket: string }>("/v1/live/ticket", this.clientId ? { client_id: this.clientId } : {})).ticket;
    } catch (err) {
      // Signed out or no access: retrying cannot help, and the app shows the login or an error.
      if (err instanceof ApiFailure && err.status >= 400 && err.status < 500) {
        this.refusal.value = err.message;
        this.status.value = "offline";
        return this.stop();
      }
      return this.retry();
    }
    if (this.stopped) return;
    const ws = new WebSocket(socketUrl(this.path, ticket));
    this.ws = ws;
    ws.onopen = () => {
      this.attempts = 0;
      this.status.value = "live";
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), PING_EVERY_MS);
    };
    ws.onmessage = (e) => {
      if (e.data === "pong") return;
      this.onMessage(JSON.parse(e.data as string));
    };
    ws.onclose = () => {
      clearInterval(this.pingTimer);
      if (this.ws === ws && !this.stopped) this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.status.value = "offline";
    const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** this.attempts);
    this.attempts += 1;
    this.retryTimer = setTimeout(() => void this.connect(), base / 2 + Math.random() * (base / 2));
  }
}
