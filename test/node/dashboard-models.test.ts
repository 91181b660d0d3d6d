import { describe, expect, it, vi } from "vitest";
import type { StatusCounts } from "../../schema/api.ts";
import { STATUSES } from "../../schema/event.ts";
import type { OverviewRow } from "../../schema/live.ts";
import { MINUTE_MS } from "../../schema/time.ts";

// The models' API module reads the page's origin on import; nothing here reaches the network.
vi.stubGlobal("location", new URL("http://dashboard.test/"));
const { OverviewModel } = await import("../../pages/src/overview-model.ts");
const { CHART_HOURS, ClientModel } = await import("../../pages/src/client-model.ts");
const { POINTER_RELEASE_MS } = await import("../../pages/src/order-hold.ts");

const counts = (sent: number, delivered = 0, read = 0): StatusCounts => ({ accepted: sent, sent, delivered, read, failed: 0 });
const client = (client_id: string, name: string, today: StatusCounts, minute = counts(0)): OverviewRow => ({ client_id, name, minute, hour: today, today });

describe("the overview's rows", () => {
  const rows = [
    client("c-a", "Loja 10", counts(50, 40, 10)),
    client("c-b", "Loja 2", counts(50, 50, 0)),
    client("c-c", "Ótica Sul", counts(90, 45, 45)),
    client("c-d", "Arco", counts(0), counts(3)),
  ];
  const names = (m: InstanceType<typeof OverviewModel>) => m.visible.value.map((r) => r.name);
  const showingRows = () => {
    const m = new OverviewModel();
    m.receive({ type: "snapshot", clients: rows });
    return m;
  };

  it("sort busiest first, ties by name as people count (Loja 2 before Loja 10), and flip on a second click", () => {
    const m = showingRows();
    expect(names(m)).toEqual(["Ótica Sul", "Loja 2", "Loja 10", "Arco"]);
    m.setSort("minute.sent");
    expect(names(m)).toEqual(["Arco", "Loja 2", "Loja 10", "Ótica Sul"]);
    m.setSort("minute.sent");
    expect(names(m)).toEqual(["Loja 2", "Loja 10", "Ótica Sul", "Arco"]);
    m.setSort("name");
    expect(names(m)).toEqual(["Arco", "Loja 2", "Loja 10", "Ótica Sul"]);
    m.setSort("name");
    expect(names(m)).toEqual(["Ótica Sul", "Loja 10", "Loja 2", "Arco"]);
  });

  it("sort by rate with the clients that have none (nothing sent) below a rate of 0", () => {
    const m = showingRows();
    m.setSort("deliveryRate");
    expect(names(m)).toEqual(["Loja 2", "Loja 10", "Ótica Sul", "Arco"]);
    m.setSort("readRate");
    expect(names(m)).toEqual(["Ótica Sul", "Loja 10", "Loja 2", "Arco"]);
  });

  it("search names and ids, ignoring case", () => {
    const m = showingRows();
    m.search.value = "  LOJA ";
    expect(names(m)).toEqual(["Loja 2", "Loja 10"]);
    m.search.value = "C-D";
    expect(names(m)).toEqual(["Arco"]);
  });

  it("take an update's rows over the ones shown, a snapshot's instead of all, and hold still while paused", () => {
    const m = showingRows();
    m.togglePause();
    m.receive({ type: "update", clients: [client("c-d", "Arco", counts(500))] });
    expect(names(m)[0]).toBe("Ótica Sul");
    m.togglePause();
    expect(names(m)).toEqual(["Arco", "Ótica Sul", "Loja 2", "Loja 10"]);
    m.receive({ type: "snapshot", clients: [client("c-e", "new", counts(1))] });
    expect(names(m)).toEqual(["new"]);
  });
});

describe("the client page's chart", () => {
  it("has one column per minute of the last hours, ending now, zero where nothing happened", () => {
    const m = new ClientModel("c");
    const now = Date.UTC(2026, 10, 20, 12, 0);
    m.now.value = now;
    const first = now - (CHART_HOURS * 60 - 1) * MINUTE_MS;
    // Minutes outside the window are not drawn.
    const minutes = [now, now - MINUTE_MS, first, first - MINUTE_MS].map((minute, i) => ({ minute, ...counts(i + 1, i, 0) }));
    m.receive({ type: "update", client_id: "c", minutes, today: counts(10) });
    const { xs, ys } = m.series.value;
    expect(xs).toHaveLength(CHART_HOURS * 60);
    expect([xs[0], xs.at(-1)]).toEqual([first / 1000, now / 1000]);
    const sent = ys[STATUSES.indexOf("sent")]!;
    expect([sent[0], sent[1], sent.at(-2), sent.at(-1)]).toEqual([3, 0, 2, 1]);
    expect(sent.reduce((a, b) => a + b, 0)).toBe(6);
    expect(ys[STATUSES.indexOf("delivered")]!.at(-2)).toBe(1);
    // An update replaces the minutes it carries.
    m.receive({ type: "update", client_id: "c", minutes: [{ minute: now, ...counts(7) }], today: counts(16) });
    expect(m.series.value.ys[STATUSES.indexOf("sent")]!.at(-1)).toBe(7);
    expect(m.today.value).toEqual(counts(16));
  });

  it("reloads the history on a snapshot, dropping old minutes, without overwriting a minute the stream reported", async () => {
    const m = new ClientModel("c");
    const now = Date.UTC(2026, 10, 20, 12, 0);
    m.now.value = now;
    m.receive({ type: "update", client_id: "c", minutes: [{ minute: now - 5 * MINUTE_MS, ...counts(8) }], today: counts(8) });
    const history = [now, now - MINUTE_MS].map((minute) => ({ minute, ...counts(1) }));
    vi.stubGlobal("fetch", async () => Response.json({ client_id: "c", minutes: history }));
    m.receive({ type: "snapshot", client_id: "c", minutes: [{ minute: now, ...counts(9) }], today: counts(10) });
    await vi.waitFor(() => expect(m.minutes.value.has(now - MINUTE_MS)).toBe(true));
    expect(m.series.value.ys[STATUSES.indexOf("sent")]!.slice(-6)).toEqual([0, 0, 0, 0, 1, 9]);
    // Updates that arrive while the history is on its way are newer than it too.
    let answer: (r: Response) => void = () => {};
    vi.stubGlobal("fetch", () => new Promise<Response>((r) => (answer = r)));
    m.receive({ type: "snapshot", client_id: "c", minutes: [{ minute: now, ...counts(9) }], today: counts(10) });
    m.receive({ type: "update", client_id: "c", minutes: [{ minute: now, ...counts(12) }], today: counts(13) });
    answer(Response.json({ client_id: "c", minutes: [now, now - MINUTE_MS].map((minute) => ({ minute, ...counts(2) })) }));
    await vi.waitFor(() => expect(m.minutes.value.get(now - MINUTE_MS)?.sent).toBe(2));
    expect(m.series.value.ys[STATUSES.indexOf("sent")]!.slice(-2)).toEqual([2, 12]);
    vi.unstubAllGlobals();
  });
});

describe("the overview's order while someone is about to act on a row", () => {
  const rows = [client("c-a", "A", counts(30)), client("c-b", "B", counts(20)), client("c-c", "C", counts(10))];
  const ids = (m: InstanceType<typeof OverviewModel>) => m.shown.value.map((r) => r.client_id);
  const overtake = (m: InstanceType<typeof OverviewModel>) => m.receive({ type: "update", clients: [client("c-c", "C", counts(99)), client("c-d", "D", counts(50))] });

  it("holds while the pointer is over the rows, with live numbers, and catches up shortly after it leaves", () => {
    vi.useFakeTimers();
    const m = new OverviewModel();
    m.receive({ type: "snapshot", clients: rows });
    m.holdOrder("pointer");
    overtake(m);
    // A row that appeared meanwhile comes last.
    expect(ids(m)).toEqual(["c-a", "c-b", "c-c", "c-d"]);
    expect(m.shown.value[2]!.today.sent).toBe(99);
    m.releaseOrder("pointer");
    vi.advanceTimersByTime(POINTER_RELEASE_MS - 1);
    expect(ids(m)).toEqual(["c-a", "c-b", "c-c", "c-d"]);
    // Back over the rows before the release: still held.
    m.holdOrder("pointer");
    vi.advanceTimersByTime(POINTER_RELEASE_MS);
    expect(ids(m)).toEqual(["c-a", "c-b", "c-c", "c-d"]);
    m.releaseOrder("pointer");
    vi.advanceTimersByTime(POINTER_RELEASE_MS);
    expect(ids(m)).toEqual(["c-c", "c-d", "c-a", "c-b"]);
    vi.useRealTimers();
  });

  it("holds while either the keyboard or the pointer is in the rows, and takes a new sort at once", () => {
    vi.useFakeTimers();
    const m = new OverviewModel();
    m.receive({ type: "snapshot", clients: rows });
    m.holdOrder("focus");
    m.holdOrder("pointer");
    overtake(m);
    m.releaseOrder("pointer");
    vi.advanceTimersByTime(POINTER_RELEASE_MS);
    expect(ids(m)).toEqual(["c-a", "c-b", "c-c", "c-d"]);
    m.setSort("name");
    expect(ids(m)).toEqual(["c-a", "c-b", "c-c", "c-d"]);
    m.setSort("name");
    expect(ids(m)).toEqual(["c-d", "c-c", "c-b", "c-a"]);
    m.receive({ type: "update", clients: [client("c-e", "E", counts(1))] });
    expect(ids(m)).toEqual(["c-d", "c-c", "c-b", "c-a", "c-e"]);
    m.releaseOrder("focus");
    expect(ids(m)).toEqual(["c-e", "c-d", "c-c", "c-b", "c-a"]);
    vi.useRealTimers();
  });
});

describe("the overview's live badge", () => {
  it("says paused while the table is held, over a live stream; a stream that is down still says so", () => {
    const m = new OverviewModel();
    m.receive({ type: "snapshot", clients: [client("c-a", "A", counts(1))] });
    m.connection.status.value = "live";
    expect(m.badge.value).toBe("live");
    m.togglePause();
    expect(m.badge.value).toBe("paused");
    m.connection.status.value = "offline";
    expect(m.badge.value).toBe("offline");
    m.connection.status.value = "live";
    m.togglePause();
    expect(m.badge.value).toBe("live");
  });
});
