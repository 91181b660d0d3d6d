import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeSocket } from "./fake-web-socket.ts";

// The API module reads the page's origin on import; the network is the `fetch` stubbed in each test.
vi.stubGlobal("location", new URL("http://dashboard.test/"));
const { LiveConnection } = await import("../../pages/src/live-connection.ts");
const { CATEGORY_REFRESH_MS, CategoryTotals } = await import("../../pages/src/category-totals.ts");

/** The ticket calls the connection made, each with the fake time it made it at. */
let ticketCalls: { at: number; body: unknown }[];
/** What the next ticket call answers: a status (an error body) or a ticket. */
let ticketAnswer: () => Response;
let issued: number;
/** The page's window, for its online/offline events. */
let page: EventTarget;

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2026, 10, 20, 12) });
  // The jitter at its top: every wait is the whole backoff, so the test can state it.
  vi.spyOn(Math, "random").mockReturnValue(1);
  page = new EventTarget();
  vi.stubGlobal("addEventListener", page.addEventListener.bind(page));
  vi.stubGlobal("removeEventListener", page.removeEventListener.bind(page));
  vi.stubGlobal("WebSocket", FakeSocket);
  FakeSocket.all = [];
  ticketCalls = [];
  issued = 0;
  ticketAnswer = () => Response.json({ ticket: `t${++issued}`, expires_at: Date.now() + 60_000 });
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    expect(url).toBe("http://dashboard.test/v1/live/ticket");
    ticketCalls.push({ at: Date.now(), body: JSON.parse(init.body as string) });
    return ticketAnswer();
  });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

const unavailable = () => Response.json({ error: { code: "unavailable", message: "try later" } }, { status: 503 });
const gaps = () => ticketCalls.slice(1).map((c, i) => c.at - ticketCalls[i]!.at);

describe("the live connection", () => {
  it("backs off from 0.5 s doubling to at most 30 s, and starts over after a connection that opened", async () => {
    ticketAnswer = unavailable;
    const conn = new LiveConnection("/v1/live", undefined, () => {});
    conn.start();
    await vi.advanceTimersByTimeAsync(200_000);
    expect(gaps().slice(0, 9)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(conn.status.value).toBe("offline");

    ticketAnswer = () => Response.json({ ticket: "fresh", expires_at: Date.now() + 60_000 });
    await vi.advanceTimersByTimeAsync(30_000);
    FakeSocket.all.at(-1)!.open();
    expect(conn.status.value).toBe("live");
    ticketCalls = [];
    FakeSocket.all.at(-1)!.onclose!();
    await vi.advanceTimersByTimeAsync(500);
    expect(ticketCalls).toHaveLength(1);
    conn.stop();
  });

  it("asks a fresh ticket for every connection, and hands on the messages of the socket", async () => {
    const received: unknown[] = [];
    const conn = new LiveConnection("/v1/clients/c-1/live", "c-1", (m) => received.push(m));
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    const first = FakeSocket.all[0]!;
    expect(first.url).toBe("ws://dashboard.test/v1/clients/c-1/live?ticket=t1");
    first.open();
    first.onmessage!({ data: JSON.stringify({ type: "snapshot" }) });
    first.onclose!();
    await vi.advanceTimersByTimeAsync(500);
    expect(ticketCalls.map((c) => c.body)).toEqual([{ client_id: "c-1" }, { client_id: "c-1" }]);
    expect(FakeSocket.all.map((s) => s.url)).toEqual([first.url, "ws://dashboard.test/v1/clients/c-1/live?ticket=t2"]);
    // The dropped socket's late messages reach nobody: the next snapshot comes on the new one.
    first.onmessage?.({ data: JSON.stringify({ type: "update" }) });
    expect(received).toEqual([{ type: "snapshot" }]);
    conn.stop();
  });

  it("gives up on a ticket refused for the caller (4xx) and shows why, and retries a server failure", async () => {
    ticketAnswer = () => Response.json({ error: { code: "forbidden", message: "not yours" } }, { status: 403 });
    const refused = new LiveConnection("/v1/clients/c-2/live", "c-2", () => {});
    refused.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(ticketCalls).toHaveLength(1);
    expect(refused.refusal.value).toMatchObject({ status: 403, code: "forbidden" });

    ticketCalls = [];
    ticketAnswer = () => Response.json({ error: { code: "internal", message: "oops" } }, { status: 500 });
    const failing = new LiveConnection("/v1/live", undefined, () => {});
    failing.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ticketCalls).toHaveLength(2);
    expect(failing.refusal.value).toBeNull();
    failing.stop();
  });

  it("takes its refusal back when started again (the client page goes live once the client is given)", async () => {
    ticketAnswer = () => Response.json({ error: { code: "forbidden", message: "not yours" } }, { status: 403 });
    const conn = new LiveConnection("/v1/clients/c-2/live", "c-2", () => {});
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.refusal.value).toMatchObject({ status: 403 });
    ticketAnswer = () => Response.json({ ticket: "given", expires_at: Date.now() + 60_000 });
    conn.start();
    expect(conn.refusal.value).toBeNull();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all.at(-1)!.open();
    expect([conn.status.value, conn.refusal.value]).toEqual(["live", null]);
    conn.stop();
  });

  it("lets the failure of a ticket asked by an attempt since superseded touch nothing", async () => {
    const answers: ((r: Response) => void)[] = [];
    vi.stubGlobal("fetch", () => new Promise<Response>((r) => answers.push(r)));
    const conn = new LiveConnection("/v1/live", undefined, () => {});
    conn.start();
    // Started again (the client's midnight) while the first ticket is on its way.
    conn.start();
    answers[1]!(Response.json({ ticket: "current", expires_at: Date.now() + 60_000 }));
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all.at(-1)!.open();
    answers[0]!(unavailable());
    await vi.advanceTimersByTimeAsync(0);
    // Within the first ping's 30 s: a retry's backoff would have run out by then.
    await vi.advanceTimersByTimeAsync(20_000);
    expect([FakeSocket.all.length, answers.length, conn.status.value]).toEqual([1, 2, "live"]);
    conn.stop();
  });

  it("opens no socket for a ticket that arrives after the page stopped the connection", async () => {
    let answer: (r: Response) => void = () => {};
    vi.stubGlobal("fetch", () => new Promise<Response>((r) => (answer = r)));
    const conn = new LiveConnection("/v1/live", undefined, () => {});
    conn.start();
    conn.stop();
    answer(Response.json({ ticket: "late", expires_at: Date.now() + 60_000 }));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeSocket.all).toEqual([]);
  });

  it("drops the socket when the browser goes offline, reconnects at once when it is back, and leaves a live socket be", async () => {
    const conn = new LiveConnection("/v1/live", undefined, () => {});
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all[0]!.open();
    page.dispatchEvent(new Event("online"));
    await vi.advanceTimersByTimeAsync(0);
    expect(ticketCalls).toHaveLength(1);
    ticketAnswer = unavailable;
    page.dispatchEvent(new Event("offline"));
    expect([conn.status.value, FakeSocket.all[0]!.readyState]).toEqual(["offline", 3]);
    await vi.advanceTimersByTimeAsync(500 + 1_000);
    expect(ticketCalls).toHaveLength(3);
    // Back online in the middle of a 2 s wait: no reason to sit it out.
    ticketAnswer = () => Response.json({ ticket: "back", expires_at: Date.now() + 60_000 });
    page.dispatchEvent(new Event("online"));
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.all.at(-1)!.url).toBe("ws://dashboard.test/v1/live?ticket=back");
    conn.stop();
  });

  it("starts over after a stop: the next start is a first connect, not a retry", async () => {
    ticketAnswer = unavailable;
    const conn = new LiveConnection("/v1/live", undefined, () => {});
    conn.start();
    await vi.advanceTimersByTimeAsync(10_000);
    conn.stop();
    ticketCalls = [];
    conn.start();
    expect(conn.status.value).toBe("connecting");
    await vi.advanceTimersByTimeAsync(500);
    expect(ticketCalls).toHaveLength(2);
    conn.stop();
  });

  it("takes a socket that answers no ping within 10 s for gone, and reconnects", async () => {
    const conn = new LiveConnection("/v1/live", undefined, () => {});
    conn.start();
    await vi.advanceTimersByTimeAsync(0);
    FakeSocket.all[0]!.open();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(FakeSocket.all[0]!.sent).toEqual(["ping"]);
    await vi.advanceTimersByTimeAsync(10_000 + 500);
    expect(FakeSocket.all).toHaveLength(2);
    // A pong keeps the next one.
    FakeSocket.all[1]!.open();
    await vi.advanceTimersByTimeAsync(30_000);
    FakeSocket.all[1]!.onmessage!({ data: "pong" });
    await vi.advanceTimersByTimeAsync(15_000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(conn.status.value).toBe("live");
    conn.stop();
  });
});

describe("today's counts by category", () => {
  let reads: { at: number; url: URL }[];
  let answer: () => Promise<Response>;
  const categories = (sent: number) => Response.json({ client_id: "c", from: 0, to: 0, categories: [{ category: "utility", accepted: 0, sent, delivered: 0, read: 0, failed: 0 }] });

  beforeEach(() => {
    reads = [];
    answer = async () => categories(1);
    vi.stubGlobal("fetch", async (url: string) => {
      reads.push({ at: Date.now(), url: new URL(url) });
      return answer();
    });
  });

  it("reads the client's local day, not the UTC one", async () => {
    // 02:00 UTC is still the 19th in São Paulo (UTC-3).
    vi.setSystemTime(Date.UTC(2026, 10, 20, 2));
    const totals = new CategoryTotals("acme-1", "America/Sao_Paulo");
    totals.refresh();
    await vi.advanceTimersByTimeAsync(0);
    expect(reads.map((r) => [r.url.pathname, r.url.searchParams.get("from"), r.url.searchParams.get("to")])).toEqual([
      ["/v1/clients/acme-1/categories", "2026-11-19T03:00:00.000Z", "2026-11-20T03:00:00.000Z"],
    ]);
    expect(totals.rows.value).toEqual([expect.objectContaining({ category: "utility", sent: 1 })]);
    totals.stop();
  });

  it(`reads at most every ${CATEGORY_REFRESH_MS} ms, again after a read that a refresh came during, and retries a failure`, async () => {
    let finish: (r: Response) => void = () => {};
    answer = () => new Promise((r) => (finish = r));
    const start = Date.now();
    const totals = new CategoryTotals("c", "UTC");
    totals.refresh();
    totals.refresh();
    await vi.advanceTimersByTimeAsync(0);
    expect(reads).toHaveLength(1);
    // A change while the read is on its way: the read may have missed it.
    totals.refresh();
    finish(categories(1));
    await vi.advanceTimersByTimeAsync(CATEGORY_REFRESH_MS);
    expect(reads.map((r) => r.at - start)).toEqual([0, CATEGORY_REFRESH_MS]);
    finish(Response.json({ error: { code: "unavailable", message: "later" } }, { status: 503 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(totals.error.value).toMatchObject({ status: 503 });
    expect(totals.rows.value).toEqual([expect.objectContaining({ sent: 1 })]);
    answer = async () => categories(2);
    await vi.advanceTimersByTimeAsync(CATEGORY_REFRESH_MS);
    expect(reads.map((r) => r.at - start)).toEqual([0, CATEGORY_REFRESH_MS, 2 * CATEGORY_REFRESH_MS]);
    expect([totals.error.value, totals.rows.value?.[0]?.sent]).toEqual([null, 2]);
    // Nothing asked since: no more reads; and none once the page stopped it.
    await vi.advanceTimersByTimeAsync(10 * CATEGORY_REFRESH_MS);
    expect(reads).toHaveLength(3);
    totals.stop();
    totals.refresh();
    await vi.advanceTimersByTimeAsync(10 * CATEGORY_REFRESH_MS);
    expect(reads).toHaveLength(3);
  });
});
