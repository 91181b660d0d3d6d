import { afterEach, describe, expect, it, vi } from "vitest";
import type { StatusCounts } from "../../schema/api.ts";
import { STATUSES } from "../../schema/event.ts";
import { MINUTE_MS } from "../../schema/time.ts";

// The models' API module reads the page's origin on import; the network is the `fetch` stubbed in each test.
vi.stubGlobal("location", new URL("http://dashboard.test/"));
const { ClientModel, HISTORY_RETRY_MS } = await import("../../pages/src/client-model.ts");

const counts = (sent: number): StatusCounts => ({ accepted: sent, sent, delivered: 0, read: 0, failed: 0 });
const sentColumn = (m: InstanceType<typeof ClientModel>) => m.series.value.ys[STATUSES.indexOf("sent")]!;

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
