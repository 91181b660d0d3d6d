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
      if (path === "/v1/live/ticket") return Response.json({ ticket: `t${ServerSocket.all.length + 1}`, expires_at: Date.now() + 60_000 });
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

describe("the client page's 'today' across the client's midnight, with the browser's clock ahead", () => {
  it("does not keep the day that ended as today when the snapshot asked at the browser's midnight was still the server's old day", async () => {
    skewMs = 20_000;
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 21, 2, 59) });
    vi.stubGlobal("WebSocket", ServerSocket);
    ServerSocket.all = [];
    vi.stubGlobal("fetch", async (url: string) => {
      const path = new URL(url).pathname;
      if (path === "/v1/live/ticket") return Response.json({ ticket: `t${ServerSocket.all.length + 1}`, expires_at: Date.now() + 60_000 });
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
    expect(ServerSocket.all.length).toBeLessThanOrEqual(3);
    model.stop();
  });
});
