import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StatusCounts } from "../../schema/api.ts";
import { STATUSES } from "../../schema/event.ts";
import { MINUTE_MS } from "../../schema/time.ts";

// The models' API module reads the page's origin on import; the network is the `fetch` stubbed in each test.
vi.stubGlobal("location", new URL("http://dashboard.test/"));
const { ClientModel, HISTORY_RETRY_MS } = await import("../../pages/src/client-model.ts");

const counts = (sent: number): StatusCounts => ({ accepted: sent, sent, delivered: 0, read: 0, failed: 0 });
const sentColumn = (m: InstanceType<typeof ClientModel>) => m.series.value.ys[STATUSES.indexOf("sent")]!;

// stop() stops the live connection, which stops listening for the browser going offline.
beforeEach(() => {
  vi.stubGlobal("addEventListener", () => {});
  vi.stubGlobal("removeEventListener", () => {});
});

afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("the client page's history", () => {
  it("asks for the history again after a failed read (a 503), instead of showing its hours as zeros for good", async () => {
    const now = Date.UTC(2026, 10, 20, 12, 0);
    vi.useFakeTimers({ now });
    const m = new ClientModel("c");
    // Two hours ago: before the snapshot's 60 minutes, so only the history has it.
    const old = now - 120 * MINUTE_MS;
    let answers = 0;
    vi.stubGlobal("fetch", async () => {
      answers += 1;
      if (answers === 1) return Response.json({ error: { code: "unavailable", message: "try again" } }, { status: 503 });
      return Response.json({ client_id: "c", minutes: [{ minute: old, ...counts(7) }] });
    });
    m.receive({ type: "snapshot", client_id: "c", minutes: [{ minute: now, ...counts(1) }], today: counts(8) });
    await vi.advanceTimersByTimeAsync(0);
    expect(m.error.value).toMatchObject({ status: 503 });
    // The stream stays up (no new snapshot): the page must read the history again by itself.
    await vi.advanceTimersByTimeAsync(HISTORY_RETRY_MS);
    expect(m.minutes.value.get(old)?.sent).toBe(7);
    expect(m.error.value).toBeNull();
    expect(sentColumn(m).reduce((a, b) => a + b, 0)).toBe(8);
  });

  it.each<[string, () => Response]>([
    ["a 500", () => Response.json({ error: { code: "internal", message: "boom" } }, { status: 500 })],
    ["no network", () => {
      throw new TypeError("Failed to fetch");
    }],
  ])("asks again after a read that got %s, once the pause is over and not before", async (_what, failure) => {
    const now = Date.UTC(2026, 10, 20, 12, 0);
    vi.useFakeTimers({ now });
    const m = new ClientModel("c");
    const old = now - 120 * MINUTE_MS;
    let calls = 0;
    vi.stubGlobal("fetch", async () => {
      calls += 1;
      return calls === 1 ? failure() : Response.json({ client_id: "c", minutes: [{ minute: old, ...counts(7) }] });
    });
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(7) });
    await vi.advanceTimersByTimeAsync(HISTORY_RETRY_MS - 1);
    expect(calls).toBe(1);
    expect(m.error.value).not.toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    expect(m.minutes.value.get(old)?.sent).toBe(7);
    expect(m.error.value).toBeNull();
    m.stop();
  });

  it.each([403, 404])("does not ask again after a %i (the answer will not change), and shows it", async (status) => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 20, 12, 0) });
    const m = new ClientModel("c");
    let calls = 0;
    vi.stubGlobal("fetch", async () => {
      calls += 1;
      return Response.json({ error: { code: "no", message: "no" } }, { status });
    });
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(0) });
    await vi.advanceTimersByTimeAsync(5 * HISTORY_RETRY_MS);
    expect(calls).toBe(1);
    expect(m.error.value).toMatchObject({ status });
    m.stop();
  });

  it("stops asking once the page stops: neither a pending retry nor a read in flight that then fails asks again", async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 20, 12, 0) });
    const unavailable = () => Response.json({ error: { code: "unavailable", message: "later" } }, { status: 503 });
    const pending: ((r: Response) => void)[] = [];
    vi.stubGlobal("fetch", () => new Promise<Response>((r) => pending.push(r)));
    // A retry pending when the page stops.
    const a = new ClientModel("a");
    a.receive({ type: "snapshot", client_id: "a", minutes: [], today: counts(0) });
    pending[0]!(unavailable());
    await vi.advanceTimersByTimeAsync(0);
    a.stop();
    await vi.advanceTimersByTimeAsync(5 * HISTORY_RETRY_MS);
    expect(pending).toHaveLength(1);
    // A read in flight when the page stops, failing after.
    const b = new ClientModel("b");
    b.receive({ type: "snapshot", client_id: "b", minutes: [], today: counts(0) });
    expect(pending).toHaveLength(2);
    b.stop();
    pending[1]!(unavailable());
    await vi.advanceTimersByTimeAsync(5 * HISTORY_RETRY_MS);
    expect(pending).toHaveLength(2);
  });

  it("keeps one retry at a time: a snapshot while a retry waits replaces it rather than starting a second round of reads", async () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 10, 20, 12, 0) });
    let calls = 0;
    vi.stubGlobal("fetch", async () => {
      calls += 1;
      return Response.json({ error: { code: "unavailable", message: "later" } }, { status: 503 });
    });
    const m = new ClientModel("c");
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(0) });
    await vi.advanceTimersByTimeAsync(2_000);
    // A reconnect's snapshot, its read failing too.
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(0) });
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toBe(2);
    // One read every HISTORY_RETRY_MS from the last failure, not two.
    await vi.advanceTimersByTimeAsync(4 * HISTORY_RETRY_MS);
    expect(calls).toBe(6);
    m.stop();
    await vi.advanceTimersByTimeAsync(5 * HISTORY_RETRY_MS);
    expect(calls).toBe(6);
  });

  it("keeps the answer to the latest snapshot's history when the one asked before it comes last", async () => {
    const now = Date.UTC(2026, 10, 20, 12, 0);
    vi.useFakeTimers({ now });
    const m = new ClientModel("c");
    const old = now - 120 * MINUTE_MS;
    const pending: ((r: Response) => void)[] = [];
    vi.stubGlobal("fetch", () => new Promise<Response>((r) => pending.push(r)));
    // First connection's snapshot; its history is slow.
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(5) });
    // A reconnect (a 4401, the client's midnight): a new snapshot, a new history read. Meanwhile a
    // late event (a bridged backlog) moved a minute two hours ago from 5 to 6.
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(6) });
    expect(pending).toHaveLength(2);
    pending[1]!(Response.json({ client_id: "c", minutes: [{ minute: old, ...counts(6) }] }));
    await vi.advanceTimersByTimeAsync(0);
    expect(m.minutes.value.get(old)?.sent).toBe(6);
    // The first read, asked before the event, answers last: it must not put the old count back.
    pending[0]!(Response.json({ client_id: "c", minutes: [{ minute: old, ...counts(5) }] }));
    await vi.advanceTimersByTimeAsync(0);
    expect(m.minutes.value.get(old)?.sent).toBe(6);
  });

  it("does not show a failure of a superseded history read over a chart the latest read filled", async () => {
    const now = Date.UTC(2026, 10, 20, 12, 0);
    vi.useFakeTimers({ now });
    const m = new ClientModel("c");
    const pending: ((r: Response) => void)[] = [];
    vi.stubGlobal("fetch", () => new Promise<Response>((r) => pending.push(r)));
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(5) });
    m.receive({ type: "snapshot", client_id: "c", minutes: [], today: counts(6) });
    pending[1]!(Response.json({ client_id: "c", minutes: [] }));
    await vi.advanceTimersByTimeAsync(0);
    pending[0]!(Response.json({ error: { code: "unavailable", message: "later" } }, { status: 503 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(m.error.value).toBeNull();
  });
});
