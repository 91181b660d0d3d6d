import type { NotificationEvent, Status } from "../../schema/event.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { call, postWebhook, unique } from "./helpers.ts";


/** A live socket opened through the Worker, with its messages queued in arrival order. */
export class LiveSocket {
  private readonly queue: unknown[] = [];
  private readonly waiters: ((m: unknown) => void)[] = [];
  /** Every message received so far, for "never saw X" assertions. */
  readonly seen: unknown[] = [];

  /** Resolves with the close frame's code and reason when the server closes the socket. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
    ws.addEventListener("message", (e) => {
      const m: unknown = JSON.parse(e.data as string);
      this.seen.push(m);
      const w = this.waiters.shift();
      if (w) w(m);
      else this.queue.push(m);
    });
    ws.accept();
  }

  /** Upgrades `path`; returns the refusal response when the Worker does not switch protocols. */
  static async open(path: string, headers: Record<string, string> = {}): Promise<LiveSocket | Response> {
    const res = await call(path, { headers: { upgrade: "websocket", ...headers } });
    if (res.status !== 101 || !res.webSocket) return res;
    return new LiveSocket(res.webSocket);
  }

  static async connect(path: string, headers: Record<string, string> = {}): Promise<LiveSocket> {
    const s = await LiveSocket.open(path, headers);
    if (s instanceof Response) throw new Error(`upgrade of ${path} refused: ${s.status} ${await s.text()}`);
    return s;
  }

  next<T>(): Promise<T> {
    const m = this.queue.shift();
    if (m !== undefined) return Promise.resolve(m as T);
    return new Promise((resolve) => this.waiters.push(resolve as (m: unknown) => void));
  }

  /** The next message satisfying `match`, skipping others. */
  async nextWhere<T>(match: (m: T) => boolean): Promise<T> {
    for (;;) {
      const m = await this.next<T>();
      if (match(m)) return m;
    }
  }

  close(): void {
    this.ws.close(1000, "done");
  }
}

export { clearOfMinuteTurn } from "../minute-turn.ts";

const sec = (ms: number) => Math.floor(ms / 1000);

/** Posts a signed webhook with one fresh message's statuses, occurring now, for `phone`. */
export async function ingestNow(phone: string, statuses: Status[]): Promise<void> {
  const wamid = `wamid.${unique("m")}`;
  const now = sec(Date.now());
  const res = await postWebhook(
    webhook([{ phoneNumberId: phone, statuses: statuses.map((status) => statusObject({ id: wamid, status, timestamp: now, category: "utility" })) }]),
  );
  if (res.status !== 200) throw new Error(`webhook failed: ${res.status} ${await res.text()}`);
}

/** A canonical event of `clientId`, for calling the ClientCounter directly. */
export function event(clientId: string, status: Status, occurredAt = Date.now()): NotificationEvent {
  const id = unique("wamid");
  return {
    event_id: `${id}:${status}`,
    message_id: id,
    client_id: clientId,
    status,
    occurred_at: occurredAt,
    received_at: occurredAt,
    category: "utility",
    billable: true,
    pricing_type: "regular",
    recipient: "5511987654321",
    country: "BR",
    phone_number_id: null,
    template: null,
    error_code: null,
    error_title: null,
    source: "kafka",
  };
}
