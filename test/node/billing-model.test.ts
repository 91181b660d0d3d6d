import { afterEach, describe, expect, it, vi } from "vitest";
import { BillingDayModel, BillingMonthModel, CHANGE_SETTLE_MS, dayBefore, monthDays } from "../../pages/src/billing-model.ts";
import { dayDueRange, type BillingResponse, type BillingSummary } from "../../schema/billing.ts";

/** An API whose answers the test hands out, in any order. */
function manualApi() {
  const asked: { path: string; answer(body: unknown): void; fail(err: unknown): void }[] = [];
  const ask = <T>(path: string) =>
    new Promise<T>((resolve, reject) => asked.push({ path, answer: (b) => resolve(b as T), fail: reject }));
  /** POSTs are listed among the asks as `POST <path>`. */
  const post = <T>(path: string) => ask<T>(`POST ${path}`);
  return { ask, post, asked };
}

const dayOf = (date: string, revision: number): BillingResponse => ({
  date,
  revision,
  due: { from: Date.UTC(2026, 10, 20, 17), to: Date.UTC(2026, 10, 21, 5) },
  computed_at: revision,
  open_clients: 0,
  unpriced: [],
  lines: [
    { client_id: "c1", client_name: "C1", category: "marketing", country: "BR", billable_count: revision, unit_price_micros: 10, amount_micros: 10 * revision, currency: "BRL" },
  ],
});
const settle = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => void vi.useRealTimers());

describe("the billing page's day", () => {
  it("opens on the calendar's yesterday, also around a clock change", () => {
    // 00:30 on 2026-03-30 in Berlin, after the 23-hour 29th: 24 hours back is the 28th.
    expect(dayBefore(Date.UTC(2026, 2, 29, 22, 30), "Europe/Berlin")).toBe("2026-03-29");
    // 23:30 on 2026-10-25, a 25-hour day: 24 hours back is 00:30 of the 25th itself.
    expect(dayBefore(Date.UTC(2026, 9, 25, 22, 30), "Europe/Berlin")).toBe("2026-10-24");
    expect(dayBefore(Date.UTC(2027, 0, 1, 0, 30), "Europe/Berlin")).toBe("2026-12-31");
    expect(dayBefore(Date.UTC(2028, 2, 1, 12), "UTC")).toBe("2028-02-29");
  });

  it("shows the day asked last, whatever order the answers come in", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    const first = model.load();
    model.date.value = "2026-11-21";
    const second = model.load();
    expect(asked.map((a) => a.path)).toEqual(["/v1/billing?date=2026-11-20", "/v1/billing?date=2026-11-21"]);
    expect(model.loading.value).toBe(true);
    asked[1]!.answer(dayOf("2026-11-21", 2));
    await second;
    asked[0]!.answer(dayOf("2026-11-20", 1));
    await first;
    expect(model.shown.value).toBe("2026-11-21");
    expect(model.revision.value).toBe(2);
    expect(model.computedAt.value).toBe(2);
    expect(model.lines.value?.[0]?.billable_count).toBe(2);
    expect(model.loading.value).toBe(false);
  });

  it("drops an earlier day's failure and shows the latest day's", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    const first = model.load();
    model.date.value = "2026-11-21";
    const second = model.load();
    asked[0]!.fail(new Error("slow and failed"));
    await first;
    expect(model.error.value).toBeNull();
    asked[1]!.fail(new Error("refused"));
    await second;
    expect(model.error.value).toEqual(new Error("refused"));
    expect(model.lines.value).toBeNull();
  });

  it("clears the old day's lines and marks the ones no rate card prices", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    const load = model.load();
    asked[0]!.answer({ ...dayOf("2026-11-20", 1), unpriced: [{ client_id: "c1", category: "marketing", country: "BR", billable_count: 1 }] });
    await load;
    expect([...model.unpriced.value]).toEqual(["c1|marketing|BR"]);
    model.date.value = "2026-11-21";
    void model.load();
    expect(model.lines.value).toBeNull();
    expect(model.revision.value).toBeNull();
  });

  it("loads a picked date once the field settles, once for several quick changes", async () => {
    vi.useFakeTimers();
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    for (const day of ["2026-11-19", "2026-11-18", "2026-11-17"]) {
      model.date.value = day;
      model.loadSoon();
      vi.advanceTimersByTime(CHANGE_SETTLE_MS - 1);
    }
    expect(asked).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(asked.map((a) => a.path)).toEqual(["/v1/billing?date=2026-11-17"]);
    // Loading at once (Enter) cancels a pending settle.
    model.date.value = "2026-11-16";
    model.loadSoon();
    void model.load();
    vi.advanceTimersByTime(CHANGE_SETTLE_MS * 2);
    expect(asked.map((a) => a.path)).toEqual(["/v1/billing?date=2026-11-17", "/v1/billing?date=2026-11-16"]);
    model.dispose();
  });

  it("computes the day shown on an admin's word, then shows it as computed; a refusal shows on that day", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    const load = model.load();
    asked[0]!.answer(dayOf("2026-11-20", 0));
    await load;
    // A date typed since, past today, is not the day computed.
    model.date.value = "2099-01-01";
    const run = model.compute();
    expect(model.computing.value).toBe(true);
    void model.compute();
    expect(asked.map((a) => a.path)).toEqual(["/v1/billing?date=2026-11-20", "POST /v1/billing/2026-11-20/run"]);
    asked[1]!.answer({ date: "2026-11-20", revision: 1, changed: true });
    await settle();
    expect(asked[2]!.path).toBe("/v1/billing?date=2026-11-20");
    asked[2]!.answer(dayOf("2026-11-20", 1));
    await run;
    expect([model.revision.value, model.computing.value, model.shown.value]).toEqual([1, false, "2026-11-20"]);

    const refused = model.compute();
    asked[3]!.fail(new Error("day not started"));
    await refused;
    expect([model.error.value, model.computing.value]).toEqual([new Error("day not started"), false]);
  });

  it("a computation answered after another day came on screen neither reloads its day over that one nor shows its failure there", async () => {
    const { ask, post, asked } = manualApi();
    const computed: string[] = [];
    const model = new BillingDayModel(ask, "2026-11-20", post, (d) => void computed.push(d));
    const show = async (day: string, revision: number) => {
      const n = asked.length;
      const load = model.load(day);
      asked[n]!.answer(dayOf(day, revision));
      await load;
    };
    await show("2026-11-20", 0);
    const run = model.compute();
    await show("2026-11-21", 3);
    asked[1]!.answer({ date: "2026-11-20", revision: 1, changed: true });
    await settle();
    // The month still hears of it; the day on screen stays the one picked since.
    expect(computed).toEqual(["2026-11-20"]);
    expect(asked.map((a) => a.path)).toEqual(["/v1/billing?date=2026-11-20", "POST /v1/billing/2026-11-20/run", "/v1/billing?date=2026-11-21"]);
    await run;
    expect([model.shown.value, model.revision.value, model.lines.value?.[0]?.billable_count]).toEqual(["2026-11-21", 3, 3]);

    await show("2026-11-20", 1);
    const refused = model.compute();
    await show("2026-11-22", 2);
    asked.at(-2)!.fail(new Error("day not started"));
    await refused;
    expect([model.shown.value, model.error.value, model.revision.value]).toEqual(["2026-11-22", null, 2]);
  });

  it("links the file of the day shown, not of a date typed since", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    expect(await model.fileLink("csv")).toBeNull();
    const load = model.load();
    asked[0]!.answer(dayOf("2026-11-20", 1));
    await load;
    model.date.value = "2026-11-25";
    const link = model.fileLink("parquet");
    await settle();
    expect(asked[1]!.path).toBe("/v1/billing/2026-11-20/download?format=parquet");
    asked[1]!.answer({ url: "https://x/v1/files/billing?sig=1", expires_at: 1 });
    expect(await link).toBe("https://x/v1/files/billing?sig=1");
    // A link refused after another day came on screen is not that day's error.
    const refused = model.fileLink("csv");
    void model.load();
    asked[2]!.fail(new Error("link refused"));
    expect(await refused).toBeNull();
    expect(model.shown.value).toBe("2026-11-25");
    expect(model.error.value).toBeNull();
  });

  it("filters the lines by client id or name, ignoring case, and keeps the filter for the next day", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    const line = (client_id: string, client_name: string) => ({ ...dayOf("", 1).lines[0]!, client_id, client_name });
    const day = (date: string) => ({ ...dayOf(date, 1), lines: [line("acme", "Acme Varejo"), line("globex", "Globex"), line("initech", "Ótica Acme")] });
    const ids = () => model.filtered.value.map((l) => l.client_id);
    const load = model.load();
    asked[0]!.answer(day("2026-11-20"));
    await load;
    expect(ids()).toEqual(["acme", "globex", "initech"]);
    model.filter.value = " ACME ";
    expect(ids()).toEqual(["acme", "initech"]);
    model.filter.value = "glob";
    expect(ids()).toEqual(["globex"]);
    model.date.value = "2026-11-21";
    const next = model.load();
    expect(ids()).toEqual([]);
    asked[1]!.answer(day("2026-11-21"));
    await next;
    expect(ids()).toEqual(["globex"]);
  });

  it("dates a day's billing from its first client's due time to its last's (the local day's end plus the grace)", () => {
    // 2026-11-20 ends at 15:00 UTC in Tokyo and at 03:00 UTC the next day in São Paulo.
    expect(dayDueRange("2026-11-20", ["America/Sao_Paulo", "Asia/Tokyo", "Asia/Tokyo"])).toEqual({ from: Date.UTC(2026, 10, 20, 17), to: Date.UTC(2026, 10, 21, 5) });
    expect(dayDueRange("2026-11-20", ["UTC"])).toEqual({ from: Date.UTC(2026, 10, 21, 2), to: Date.UTC(2026, 10, 21, 2) });
    expect(dayDueRange("2026-11-20", [])).toBeNull();
  });

  it("offers no download for a day never computed, and says when the cron bills it: from its first client to its last", async () => {
    const { ask, post, asked } = manualApi();
    const model = new BillingDayModel(ask, "2026-11-20", post);
    expect(model.downloadable.value).toBe(false);
    expect(model.due.value).toBeNull();
    const load = model.load();
    asked[0]!.answer({ ...dayOf("2026-11-20", 0), computed_at: null, lines: [] });
    await load;
    expect(model.downloadable.value).toBe(false);
    expect(model.due.value).toEqual({ from: Date.UTC(2026, 10, 20, 17), to: Date.UTC(2026, 10, 21, 5) });
    // A computed day is not due: its note goes.
    model.date.value = "2026-11-19";
    const next = model.load();
    asked[1]!.answer(dayOf("2026-11-19", 1));
    await next;
    expect(model.downloadable.value).toBe(true);
    expect(model.due.value).toBeNull();
  });
});

describe("the billing page's month", () => {
  const summaryOf = (days: BillingSummary["days"]): BillingSummary => ({ from: "2026-11-01", to: "2026-11-30", clients: [], totals: [], days });

  it("asks for the month's first to last day", () => {
    expect(monthDays("2026-02")).toEqual({ from: "2026-02-01", to: "2026-02-28" });
    expect(monthDays("2028-02")).toEqual({ from: "2028-02-01", to: "2028-02-29" });
    expect(monthDays("2026-12")).toEqual({ from: "2026-12-01", to: "2026-12-31" });
  });

  it("keeps the month asked last and names its past days that are not final", async () => {
    const { ask, asked } = manualApi();
    const model = new BillingMonthModel(ask, "2026-10");
    const first = model.load();
    model.month.value = "2026-11";
    const second = model.load();
    expect(asked[1]!.path).toBe("/v1/billing/summary?from=2026-11-01&to=2026-11-30");
    asked[1]!.answer(
      summaryOf([
        { date: "2026-11-01", revision: 1, checked_at: 1, open_clients: 0 },
        { date: "2026-11-02", revision: 0, checked_at: null, open_clients: 0 },
        { date: "2026-11-03", revision: 2, checked_at: 1, open_clients: 3 },
        { date: "2026-11-04", revision: 0, checked_at: null, open_clients: 0 },
      ]),
    );
    await second;
    asked[0]!.answer(summaryOf([]));
    await first;
    expect(model.pendingDays("2026-11-04")).toEqual({ past: 3, pending: ["2026-11-02", "2026-11-03"], running: [] });
  });

  it("is read again when an admin computes one of its days on the page, keeping its totals on screen meanwhile; names its running days already billed", async () => {
    const { ask, post, asked } = manualApi();
    const month = new BillingMonthModel(ask, "2026-11");
    const day = new BillingDayModel(ask, "2026-11-04", post, (d) => month.refreshIfShowing(d));
    const summary = (revision: number) =>
      summaryOf([
        { date: "2026-11-03", revision: 1, checked_at: 1, open_clients: 0 },
        { date: "2026-11-04", revision, checked_at: revision > 0 ? 2 : null, open_clients: revision > 0 ? 2 : 0 },
      ]);
    const first = month.load();
    asked[0]!.answer(summary(0));
    await first;
    expect(month.pendingDays("2026-11-04")).toEqual({ past: 1, pending: [], running: [] });
    const load = day.load();
    asked[1]!.answer(dayOf("2026-11-04", 0));
    await load;
    // The field names another month that nobody loaded: the month shown is the one read again.
    month.month.value = "2026-12";
    const run = day.compute();
    asked[2]!.answer({});
    await settle();
    expect(asked.map((a) => a.path).slice(3)).toEqual(["/v1/billing/summary?from=2026-11-01&to=2026-11-30", "/v1/billing?date=2026-11-04"]);
    expect(month.summary.value).toEqual(summary(0));
    asked[3]!.answer(summary(1));
    asked[4]!.answer(dayOf("2026-11-04", 1));
    await run;
    await settle();
    expect(month.pendingDays("2026-11-04")).toEqual({ past: 1, pending: [], running: ["2026-11-04"] });
    // A day of another month leaves the month alone.
    day.date.value = "2026-10-31";
    const other = day.load();
    asked[5]!.answer(dayOf("2026-10-31", 0));
    await other;
    const again = day.compute();
    asked[6]!.answer({});
    await settle();
    expect(asked.map((a) => a.path).slice(7)).toEqual(["/v1/billing?date=2026-10-31"]);
    asked[7]!.answer(dayOf("2026-10-31", 1));
    await again;
  });
});
