import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { localDate } from "../../schema/time.ts";
import { FakeSocket } from "./fake-web-socket.ts";

// The page's modules read its origin on import; the network is the stubbed fetch and WebSocket below.
function stubPage(): void {
  vi.stubGlobal("location", new URL("http://dashboard.test/clients/acme"));
  vi.stubGlobal("addEventListener", () => {});
  vi.stubGlobal("removeEventListener", () => {});
}
stubPage();
const { ClientModel } = await import("../../pages/src/client-model.ts");

const TZ = "America/Sao_Paulo";
const zero = { accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
/** The client's events: five sent one minute before its local midnight (23:58 in São Paulo = 02:58 UTC). */
const events = Array.from({ length: 5 }, () => Date.UTC(2026, 10, 21, 2, 58, 10));

/** How far the browser's clock is ahead of Cloudflare's (an unsynced laptop, a VM). */
let skewMs = 0;
const serverNow = () => Date.now() - skewMs;

/** The object's `today`: the events of the client's local day of the server's now (counter-reads.ts). */
function today() {
  const day = localDate(serverNow(), TZ);
  return { ...zero, sent: events.filter((t) => localDate(t, TZ) === day).length };
}

/**
 * A faithful stand-in for an unsharded ClientCounter's socket (durable-objects/client-live.ts): a
 * snapshot on connect, `update`s only after ingest changed something (none here), and the runtime's
 * auto-response to "ping".
 */
class ServerSocket extends FakeSocket {
  constructor(url: string) {
    super(url);
    setTimeout(() => {
      this.open();
      this.onmessage?.({ data: JSON.stringify({ type: "snapshot", client_id: "acme", minutes: [], today: today() }) });
    }, 0);
  }
  override send(data: string): void {
    super.send(data);
    if (data === "ping") setTimeout(() => this.onmessage?.({ data: "pong" }), 0);
  }
}

beforeEach(stubPage);

afterEach(() => {
  skewMs = 0;
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("the client page's 'today' across the client's local midnight", () => {
  it("asks for a fresh snapshot once the client's day has turned, not keeping the day that ended as today", async () => {
    // 23:59 in São Paulo, 20 November.
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 21, 2, 59) });
    vi.stubGlobal("WebSocket", ServerSocket);
    vi.stubGlobal("fetch", async (url: string) => {
      const path = new URL(url).pathname;
      if (path === "/v1/live/ticket") return Response.json({ ticket: `t${FakeSocket.all.length + 1}`, expires_at: Date.now() + 60_000 });
      if (path === "/v1/clients/acme") return Response.json({ client_id: "acme", id: "acme", name: "Acme", timezone: TZ, currency: "BRL", active: true, today: today() });
      if (path === "/v1/clients/acme/counters") return Response.json({ client_id: "acme", minutes: [] });
      if (path === "/v1/clients/acme/categories") return Response.json({ client_id: "acme", from: 0, to: 0, categories: [] });
      throw new Error(`unexpected ${path}`);
    });
    const model = new ClientModel("acme", () => TZ);
    model.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(model.today.value?.sent).toBe(5);
    expect(localDate(Date.now(), TZ)).toBe("2026-11-20");

    // Ten minutes later: 00:09 on 21 November in the client's zone. Nothing was ingested, so the
    // object sent nothing; the page's "today" should now be the new day's (no events).
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(localDate(Date.now(), TZ)).toBe("2026-11-21");
    expect(model.today.value?.sent).toBe(0);
    model.stop();
  });
});

describe("the client page's 'today' right at the client's local midnight", () => {
  /** The API as in the tests above; `ticket` answers the live ticket. */
  function api(ticket: () => Response): { tickets: () => number } {
    let tickets = 0;
    vi.stubGlobal("WebSocket", ServerSocket);
    vi.stubGlobal("fetch", async (url: string) => {
      const path = new URL(url).pathname;
      if (path === "/v1/live/ticket") {
        tickets += 1;
        return ticket();
      }
      if (path === "/v1/clients/acme/counters") return Response.json({ client_id: "acme", minutes: [] });
      throw new Error(`unexpected ${path}`);
    });
    return { tickets: () => tickets };
  }

  it("asks within a tick of the day's turn, not a minute later", async () => {
    // 23:59 in São Paulo; its midnight is 60 s away, the clocks agree.
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 21, 2, 59) });
    api(() => Response.json({ ticket: "t", expires_at: Date.now() + 60_000 }));
    const model = new ClientModel("acme", () => TZ);
    model.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(model.today.value?.sent).toBe(5);
    // 00:00:10: the chart's clock ticks every 5 s.
    await vi.advanceTimersByTimeAsync(70_000);
    expect(model.today.value?.sent).toBe(0);
    model.stop();
  });

  it("asks once when the API is down at midnight, leaving the reconnects to the connection's backoff", async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 21, 2, 59) });
    let down = false;
    const api503 = api(() => (down ? new Response("", { status: 503 }) : Response.json({ ticket: "t", expires_at: Date.now() + 60_000 })));
    const model = new ClientModel("acme", () => TZ);
    model.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(model.today.value?.sent).toBe(5);
    down = true;
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    // The backoff: 0.5 s doubling to 30 s, with jitter, is at most ~50 tickets in ten minutes. Asked
    // again on every 5 s tick, each ask starting the backoff over, it would be hundreds.
    expect(api503.tickets()).toBeLessThanOrEqual(50);
    model.stop();
  });
});

describe("the client page's 'today' across the client's midnight, with the browser's clock ahead", () => {
  it("does not keep the day that ended as today when the snapshot asked at the browser's midnight was still the server's old day", async () => {
    skewMs = 20_000;
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 21, 2, 59) });
    vi.stubGlobal("WebSocket", ServerSocket);
    // FakeSocket.all, not ServerSocket.all: the constructor pushes to the base class's list (assigning
    // ServerSocket.all would make a new, always empty, list of the subclass).
    FakeSocket.all = [];
    vi.stubGlobal("fetch", async (url: string) => {
      const path = new URL(url).pathname;
      if (path === "/v1/live/ticket") return Response.json({ ticket: `t${FakeSocket.all.length + 1}`, expires_at: Date.now() + 60_000 });
      if (path === "/v1/clients/acme/counters") return Response.json({ client_id: "acme", minutes: [] });
      throw new Error(`unexpected ${path}`);
    });
    const model = new ClientModel("acme", () => TZ);
    model.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(model.today.value?.sent).toBe(5);

    // An hour later the client's day has turned on both clocks; nothing was ingested since.
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    expect(localDate(serverNow(), TZ)).toBe("2026-11-21");
    expect(model.today.value?.sent).toBe(0);
    // The first connection, the one at midnight, and one more a minute later: no reconnect loop.
    expect(FakeSocket.all.length).toBeLessThanOrEqual(3);
    model.stop();
  });
});
