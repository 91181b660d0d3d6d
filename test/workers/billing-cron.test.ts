import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { lateDays } from "../../durable-objects/late-billing.ts";
import { clearRebills, markRebills, rebillsBetween } from "../../workers/billing/rebills.ts";
import { billingJob, daysDueSooner, dueDaysOf, planTick } from "../../workers/billing/schedule.ts";
import { admin, authed, call, createClient, d1WithMarkedBatches, d1WithQueryLimit, postJson, signIn, unique, withClock, withEnv, withMethods } from "./helpers.ts";
import { billingOf, ingest, rateCard, runDay, status } from "./billing-fixtures.ts";
import { DAY_MS, utcDate } from "../../schema/time.ts";

const at = (iso: string) => Date.parse(iso);

/**
 * Runs `fn` with one clock for the Worker, the objects and the cron (one isolate here), starting at
 * `start` and moved by the `setNow` it is given. Sessions must be minted on it: the file's admin
 * session would be issued in its future.
 */
async function onClock(start: string, fn: (setNow: (iso: string) => number) => Promise<void>): Promise<void> {
  let now = at(start);
  await withClock(() => now, () => fn((iso) => (now = at(iso))));
}

/** The loopback stub runs `scheduled` as workerd dispatches a cron; its generated type (Fetcher) omits it. */
const worker = exports.default as unknown as { scheduled(opts: { cron: string; scheduledTime: number }): Promise<unknown> };

/** Fires the 10-minute Cron Trigger through the Worker's scheduled entry point. */
async function tick(iso: string): Promise<void> {
  await worker.scheduled({ cron: "*/10 * * * *", scheduledTime: at(iso) });
}

/**
 * The 10-minute cron's billing job at `iso` as if `ids` were the only clients. The clients other
 * tests of the file left behind, in other zones, come due at other times: their runs of the same
 * dates would add to the runs and revisions counted here.
 */
async function tickOf(ids: string[], iso: string): Promise<void> {
  let scoped = 0;
  const DB = withMethods(env.DB, {
    prepare: (query: string) => {
      if (!/ FROM clients ORDER BY id$/.test(query)) return env.DB.prepare(query);
      scoped += 1;
      return env.DB.prepare(query.replace(" ORDER BY", " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY")).bind(JSON.stringify(ids));
    },
  });
  await billingJob({ ...env, DB }, at(iso));
  expect(scoped).toBe(1);
}

async function runsOf(date: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM billing_runs WHERE date = ? AND trigger = 'cron'").bind(date).first<{ n: number }>();
  return row!.n;
}

describe("the billing Cron Trigger", () => {
  it("bills each client's day once it closed in its time zone plus grace, recomputing recent days for late events", async () => {
    const sp = await createClient({ timezone: "America/Sao_Paulo" });
    const utc = await createClient({ timezone: "UTC" });
    const mine = [sp.id, utc.id];
    for (const c of [sp, utc]) await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 50_000 });
    await ingest([
      status(utc.id, unique("wamid"), "delivered", at("2026-11-16T12:00:00Z")),
      // 22:00 on the 16th in São Paulo.
      status(sp.id, unique("wamid"), "delivered", at("2026-11-17T01:00:00Z")),
      status(sp.id, unique("wamid"), "read", at("2026-11-15T12:00:00Z")),
    ]);
    const tickMine = (iso: string) => tickOf(mine, iso);
    // The days are the file's: another test's tick may have billed them (other clients' lines, revisions) before this one.
    const clientsOn = async (date: string) => (await billingOf(date)).lines.filter((l) => mine.includes(l.client_id)).map((l) => [l.client_id, l.billable_count]);
    const before = await billingOf("2026-11-16");
    const runsBefore = await runsOf("2026-11-16");

    // Before the UTC day closed + 2 h grace: nothing is billed.
    await tickMine("2026-11-17T01:50:00Z");
    expect(await runsOf("2026-11-16")).toBe(runsBefore);
    expect(await billingOf("2026-11-16")).toMatchObject({ revision: before.revision, lines: before.lines });

    // UTC's 16th is due at 02:00Z; São Paulo's only at 05:00Z (its midnight is 03:00Z).
    await tickMine("2026-11-17T02:10:00Z");
    expect(await clientsOn("2026-11-16")).toEqual([[utc.id, 1]]);
    expect((await billingOf("2026-11-16")).revision).toBe(before.revision + 1);
    // São Paulo's 15th was long due when its read arrived: its object marked the day, and this tick
    // billed it, not São Paulo's own window hours later.
    expect(await clientsOn("2026-11-15")).toEqual([[sp.id, 1]]);

    // São Paulo's 16th was still running when that tick began: its lines are provisional.
    expect((await billingOf("2026-11-16", sp.id)).open_clients).toBe(1);
    await tickMine("2026-11-17T05:10:00Z");
    const day = await billingOf("2026-11-16");
    expect(day.revision).toBe(before.revision + 2);
    expect((await billingOf("2026-11-16", sp.id)).open_clients).toBe(0);
    expect(await clientsOn("2026-11-16")).toEqual([[sp.id, 1], [utc.id, 1]].sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
    expect(await clientsOn("2026-11-15")).toEqual([[sp.id, 1]]);
    const csv = await (await env.LAKE.get("billing/date=2026-11-16/billing.csv"))!.text();
    // The header and a line per line of the day.
    expect(csv.split("\r\n").filter(Boolean)).toHaveLength(day.lines.length + 1);

    // Later ticks within the catch-up hour recompute without changing anything.
    await tickMine("2026-11-17T05:20:00Z");
    expect(await billingOf("2026-11-16")).toEqual({ ...day, open_clients: expect.any(Number) });
    expect(await env.LAKE.get("billing/date=2026-11-16/billing.csv").then((o) => o!.text())).toBe(csv);

    // Past the catch-up hour a tick leaves the client alone.
    const runs = await runsOf("2026-11-16");
    await tickMine("2026-11-17T07:10:00Z");
    expect(await runsOf("2026-11-16")).toBe(runs);

    // A late status of the 16th arrives; the next day's close recomputes the 16th and bumps it.
    await ingest([status(sp.id, unique("wamid"), "delivered", at("2026-11-17T02:30:00Z"))]);
    await tickMine("2026-11-18T05:10:00Z");
    const bumped = await billingOf("2026-11-16");
    expect(bumped.revision).toBe(before.revision + 3);
    expect(bumped.lines.find((l) => l.client_id === sp.id)).toMatchObject({ billable_count: 2, amount_micros: 100_000 });
    expect(bumped.computed_at).toBeGreaterThanOrEqual(day.computed_at!);

    // A status of the 16th retried for days by Meta, landing on the 22nd: the 22nd's close bills it.
    await ingest([status(sp.id, unique("wamid"), "delivered", at("2026-11-17T02:40:00Z"))]);
    await tickMine("2026-11-23T05:10:00Z");
    expect((await billingOf("2026-11-16")).lines.find((l) => l.client_id === sp.id)).toMatchObject({ billable_count: 3 });
  });
});

describe("which days a tick computes", () => {
  const tokyo = "Asia/Tokyo";
  // The day and the 7 before it: Meta retries a webhook for 7 days.
  const week = (last: string) => Array.from({ length: 8 }, (_, i) => new Date(Date.parse(`${last}T00:00:00Z`) - i * 86_400_000).toISOString().slice(0, 10));
  // Tokyo (UTC+9): the 16th ends at 15:00Z on the 16th; due at 17:00Z. Each day billed as it came due.
  const ranAtDue = new Map([["2026-11-15", at("2026-11-15T17:00:00Z")], ["2026-11-16", at("2026-11-16T17:00:00Z")]]);

  it("a client's newest day is due at its local midnight plus the grace period, for the catch-up hour", () => {
    expect(dueDaysOf(tokyo, at("2026-11-16T16:59:59Z"), ranAtDue)).toEqual([]);
    expect(dueDaysOf(tokyo, at("2026-11-16T17:00:00Z"), ranAtDue)).toEqual(week("2026-11-16"));
    expect(dueDaysOf(tokyo, at("2026-11-16T17:59:59Z"), ranAtDue)).toEqual(week("2026-11-16"));
    expect(dueDaysOf(tokyo, at("2026-11-16T18:00:00Z"), ranAtDue)).toEqual([]);
    expect(dueDaysOf("America/Sao_Paulo", at("2026-11-17T05:00:00Z"), new Map())).toEqual(week("2026-11-16"));
    expect(dueDaysOf("UTC", at("2027-01-01T02:30:00Z"), new Map())).toEqual(week("2026-12-31"));
    expect(week("2026-12-31").at(-1)).toBe("2026-12-24");
  });

  it("past the catch-up hour, a newest day no run has billed since it became due is due until one does", () => {
    // No tick in the whole hour: the next one computes the day, hours later.
    expect(dueDaysOf(tokyo, at("2026-11-16T23:10:00Z"), new Map())).toEqual(week("2026-11-16"));
    // An admin's run while the day was still open does not count: it may have billed it as it stood.
    expect(dueDaysOf(tokyo, at("2026-11-16T23:10:00Z"), new Map([["2026-11-16", at("2026-11-16T14:00:00Z")]]))).toEqual(week("2026-11-16"));
    // A run of the day before does not either.
    expect(dueDaysOf(tokyo, at("2026-11-16T23:10:00Z"), new Map([["2026-11-15", at("2026-11-16T23:00:00Z")]]))).toEqual(week("2026-11-16"));
    expect(dueDaysOf(tokyo, at("2026-11-16T23:10:00Z"), new Map([["2026-11-16", at("2026-11-16T23:00:00Z")]]))).toEqual([]);
  });

  it("a day of 23 or 25 hours is due 2 h after its own end, and so is a day in a half- or quarter-hour or far-off zone", () => {
    // New York's 1st of November 2026 runs 25 hours, 04:00Z to 05:00Z the next day: due at 07:00Z on
    // the 2nd. A run of the 1st at 06:30Z (a UTC client's) came before it was due here, so it does
    // not stand for this client's; one at 07:10Z does, past the catch-up hour.
    const ny = "America/New_York";
    expect(dueDaysOf(ny, at("2026-11-02T06:59:59.999Z"), new Map([["2026-10-31", at("2026-11-01T06:10:00Z")]]))).toEqual([]);
    expect(dueDaysOf(ny, at("2026-11-02T07:00:00Z"), new Map([["2026-11-01", at("2026-11-02T06:30:00Z")]]))).toEqual(week("2026-11-01"));
    expect(dueDaysOf(ny, at("2026-11-02T08:00:00Z"), new Map([["2026-11-01", at("2026-11-02T06:30:00Z")]]))).toEqual(week("2026-11-01"));
    expect(dueDaysOf(ny, at("2026-11-02T08:00:00Z"), new Map([["2026-11-01", at("2026-11-02T07:10:00Z")]]))).toEqual([]);
    // Its 8th of March runs 23 hours, 05:00Z to 04:00Z: due at 06:00Z on the 9th, billed by 07:00Z.
    expect(dueDaysOf(ny, at("2026-03-09T07:00:00Z"), new Map([["2026-03-08", at("2026-03-09T06:10:00Z")]]))).toEqual([]);
    expect(dueDaysOf(ny, at("2026-03-09T06:59:59.999Z"), new Map([["2026-03-08", at("2026-03-09T06:10:00Z")]]))).toEqual(week("2026-03-08"));
    // London's 25th of October 2026 ends at 00:00Z on the 26th; Kolkata's (+05:30) and Kathmandu's
    // (+05:45) 16th of November at 18:30Z and 18:15Z; Kiritimati's (+14) at 10:00Z; Pago Pago's (−11)
    // at 11:00Z on the 17th. Each newest day is due from that end plus the grace, and not a
    // millisecond before (the day before then is, past its hour, as no run of it is known).
    const ends: [timezone: string, date: string, end: string][] = [
      ["Europe/London", "2026-10-25", "2026-10-26T00:00:00Z"],
      ["Asia/Kolkata", "2026-11-16", "2026-11-16T18:30:00Z"],
      ["Asia/Kathmandu", "2026-11-16", "2026-11-16T18:15:00Z"],
      ["Pacific/Kiritimati", "2026-11-16", "2026-11-16T10:00:00Z"],
      ["Pacific/Pago_Pago", "2026-11-16", "2026-11-17T11:00:00Z"],
    ];
    for (const [tz, date, end] of ends) {
      const due = at(end) + 2 * 3_600_000;
      const before = new Date(Date.parse(`${date}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
      expect(dueDaysOf(tz, due - 1, new Map()), `${tz} before`).toEqual(week(before));
      expect(dueDaysOf(tz, due, new Map()), tz).toEqual(week(date));
      expect(lateDays([[date, "marketing", "BR", 1]], tz, due - 1), `${tz} late before`).toEqual([]);
      expect(lateDays([[date, "marketing", "BR", 1]], tz, due), `${tz} late`).toEqual([date]);
    }
  });

  it("a ledger change marks its day for re-billing from the moment the day is due, not before", () => {
    // Tokyo's 16th is due at 17:00Z on the 16th; its 17th much later.
    const changes: [string, string, string, number][] = [["2026-11-16", "marketing", "BR", 1], ["2026-11-17", "marketing", "BR", 1], ["2026-11-16", "utility", "BR", 1]];
    expect(lateDays(changes, tokyo, at("2026-11-16T16:59:59.999Z"))).toEqual([]);
    expect(lateDays(changes, tokyo, at("2026-11-16T17:00:00Z"))).toEqual(["2026-11-16"]);
    expect(lateDays(changes, "UTC", at("2026-11-16T17:00:00Z"))).toEqual([]);
  });

  it("a client moved to a zone further east has due at once only the days the old zone had not", () => {
    // At 02:10Z on the 17th São Paulo's newest due day is the 15th, UTC's and Tokyo's the 16th. A day
    // already due in the old zone was billed there: marking it again would read it as open.
    const now = at("2026-11-17T02:10:00Z");
    expect(daysDueSooner("America/Sao_Paulo", tokyo, now)).toEqual(["2026-11-16"]);
    expect(daysDueSooner("UTC", tokyo, now)).toEqual([]);
    expect(daysDueSooner(tokyo, "America/Sao_Paulo", now)).toEqual([]);
  });

  it("groups the due clients by date", () => {
    const clients = [
      { id: "tokyo", timezone: tokyo, currency: "JPY", shards: 1 },
      { id: "utc", timezone: "UTC", currency: "USD", shards: 1 },
      { id: "sp", timezone: "America/Sao_Paulo", currency: "BRL", shards: 1 },
    ];
    // Tokyo's 16th and São Paulo's 15th were billed in their own catch-up hours.
    const ran = new Map([["2026-11-16", at("2026-11-16T17:10:00Z")], ["2026-11-15", at("2026-11-16T05:10:00Z")]]);
    const plan = planTick(clients, at("2026-11-17T02:10:00Z"), ran);
    expect([...plan].map(([date, cs]) => [date, cs.map((c) => c.id)])).toEqual(
      ["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13", "2026-11-14", "2026-11-15", "2026-11-16"].map((d) => [d, ["utc"]]),
    );
  });
});

describe("late events after a day's cron window", () => {
  it("bills the day again at the next tick: the client's object marks a due day its ledger changed", async () => {
    const c = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 10_000 });
    await ingest([status(c.id, unique("wamid"), "delivered", at("2026-11-10T12:00:00Z"))]);
    await runDay("2026-11-10");
    const marks = () => env.DB.prepare("SELECT date FROM billing_rebills WHERE client_id = ?").bind(c.id).all<{ date: string }>().then((r) => r.results.map((m) => m.date));

    // Long after its cron window (the 10th was due on the 11th at 02:00Z), a late delivered arrives.
    await ingest([status(c.id, unique("wamid"), "delivered", at("2026-11-10T18:00:00Z"))]);
    await vi.waitFor(async () => expect(await marks()).toEqual(["2026-11-10"]));
    expect((await billingOf("2026-11-10", c.id)).lines.map((l) => l.billable_count)).toEqual([1]);

    // A tick whose own plan has nothing of this client's bills the marked day, and clears the mark.
    await tick("2026-11-25T12:10:00Z");
    expect((await billingOf("2026-11-10", c.id)).lines.map((l) => l.billable_count)).toEqual([2]);
    expect(await marks()).toEqual([]);
  });
});

describe("marked dates that keep failing", () => {
  it("go behind the others: 80 newer marked dates of an object that does not answer do not keep an older one unbilled", async () => {
    const stuck = await createClient({ timezone: "UTC" });
    const other = await createClient({ timezone: "UTC" });
    await markRebills(env.DB, ["2023-04-01"], [other.id], 1_000);
    await markRebills(env.DB, Array.from({ length: 80 }, (_, i) => utcDate(at("2023-07-31T00:00:00Z") - i * DAY_MS)), [stuck.id], 1_000);
    const tickEnv = { ...env, CLIENT_COUNTER: unansweringLedger(stuck.id) };
    await expect(billingJob(tickEnv, at("2023-08-21T02:10:00Z"))).rejects.toThrow(/2023-07-31/);
    expect(await rebillsBetween(env.DB, "2023-04-01", "2023-04-01")).toHaveLength(1);
    await expect(billingJob(tickEnv, at("2023-08-21T02:20:00Z"))).rejects.toThrow();
    expect(await rebillsBetween(env.DB, "2023-04-01", "2023-04-01")).toEqual([]);
    await env.DB.prepare("DELETE FROM billing_rebills WHERE client_id = ?").bind(stuck.id).run();
  });
});

describe("a replay whose one call changes more of a client's days than D1 takes queries in one invocation", () => {
  it("marks every one of those days for re-billing", async () => {
    const c = await createClient({ timezone: "UTC" });
    await ingest([status(c.id, unique("wamid"), "sent", Date.now())]);
    const { DB, used } = d1WithQueryLimit();
    await runInDurableObject(counterOf(env, c.id), (instance) => {
      (instance as unknown as { env: Env }).env = { ...env, DB };
    });
    const days = Array.from({ length: 1_100 }, (_, i) => utcDate(at("2022-06-30T12:00:00Z") - i * DAY_MS));
    await ingest(days.map((day) => status(c.id, unique("wamid"), "delivered", at(`${day}T12:00:00Z`))));
    await vi.waitFor(async () => expect((await rebillsBetween(env.DB, days.at(-1)!, days[0]!)).filter((m) => m.client_id === c.id)).toHaveLength(1_100));
    expect(used()).toBe(1);
    // Left to later tests' ticks, these marks would bill 1,100 days in them.
    await env.DB.prepare("DELETE FROM billing_rebills WHERE client_id = ?").bind(c.id).run();
  });
});

describe("re-bill marks", () => {
  it("a run clears only the marks it read: a client's day marked again meanwhile stays marked", async () => {
    const [a, b] = [unique("client"), unique("client")];
    const day = "2026-11-02";
    await markRebills(env.DB, [day], [a, b], 1_000);
    const read = await rebillsBetween(env.DB, day, day);
    await markRebills(env.DB, [day], [b], 2_000);
    await clearRebills(env.DB, read);
    // Another test's marks of these days may still be there.
    const ours = (await rebillsBetween(env.DB, "2026-11-01", "2026-11-03")).filter((m) => m.client_id === a || m.client_id === b);
    expect(ours).toEqual([{ date: day, client_id: b, marked_at: 2_000 }]);
  });

  it("a mark made again in the same millisecond is still newer than the one a run read", async () => {
    const a = unique("client");
    const day = "2026-11-03";
    await markRebills(env.DB, [day], [a], 5_000);
    const read = await rebillsBetween(env.DB, day, day);
    // A sharded client's two objects can stamp the same millisecond.
    await markRebills(env.DB, [day], [a], 5_000);
    await clearRebills(env.DB, read);
    expect(await rebillsBetween(env.DB, day, day)).toEqual([{ date: day, client_id: a, marked_at: 5_001 }]);
  });
});

describe("a day marked for more clients than D1 takes queries in one invocation", () => {
  it("is billed by one run, its marks cleared in bulk: a failed run of a zone marks every client of it", async () => {
    const day = "2026-06-10";
    const ids = Array.from({ length: 1_200 }, () => unique("bulk"));
    await env.DB.prepare("INSERT INTO clients (id, name, timezone, currency, shards, active, created_at) SELECT value, value, 'UTC', 'BRL', 1, 1, 0 FROM json_each(?)")
      .bind(JSON.stringify(ids))
      .run();
    await markRebills(env.DB, [day], ids, Date.now());
    const { DB, used } = d1WithQueryLimit();
    const res = await withEnv({ DB }, `/v1/billing/${day}/run`, authed(await admin(), { method: "POST" }));
    const marksLeft = (await rebillsBetween(env.DB, day, day)).filter((m) => ids.includes(m.client_id)).length;
    expect({ status: res.status, marksLeft, withinLimit: used() <= 1_000 }).toEqual({ status: 200, marksLeft: 0, withinLimit: true });
  }, 120_000);
});

describe("a backfill that marked a year of one client's days", () => {
  it("bills the days due now, then the newest marked days, within D1's 1,000 queries a tick; the next ticks bill the rest", async () => {
    const replayed = await createClient({ timezone: "UTC" });
    const regular = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: regular.id, category: "marketing", country: "*", unit_price_micros: 10_000 });
    await ingest([status(regular.id, unique("wamid"), "delivered", at("2024-08-20T12:00:00Z"))]);
    const marked = Array.from({ length: 366 }, (_, i) => utcDate(at("2024-07-31T00:00:00Z") - i * DAY_MS));
    await markRebills(env.DB, marked, [replayed.id], 1_000);
    const left = async () =>
      (await env.DB.prepare("SELECT date FROM billing_rebills WHERE client_id = ? ORDER BY date DESC").bind(replayed.id).all<{ date: string }>()).results.map((m) => m.date);
    expect(await left()).toEqual(marked);

    // The regular client's 20 August is due at 02:00Z on the 21st.
    await billingJob({ ...env, DB: d1WithQueryLimit().DB }, at("2024-08-21T02:10:00Z"));
    expect((await billingOf("2024-08-20", regular.id)).lines.map((l) => l.billable_count)).toEqual([1]);
    expect(await left()).toEqual(marked.slice(80));
    expect((await billingOf(marked[79]!, replayed.id)).revision).toBe(1);

    for (const minute of ["20", "30", "40", "50"]) await billingJob({ ...env, DB: d1WithQueryLimit().DB }, at(`2024-08-21T02:${minute}:00Z`));
    expect(await left()).toEqual([]);
  }, 120_000);
});

describe("a billing commit whose answer D1 lost", () => {
  it("is the run's own revision: the day's files are written, and the day does not read final without them", async () => {
    // On one clock, so the event is not late (no re-bill mark).
    await onClock("2026-07-20T12:00:00Z", async (setNow) => {
      const token = await signIn("admin");
      const id = unique("client");
      expect((await postJson("/v1/admin/clients", { id, name: id, timezone: "UTC" }, token)).status).toBe(201);
      await ingest([status(id, unique("wamid"), "delivered", Date.now())]);
      // The commit reaches D1 and its answer is lost (a dropped connection after the write).
      const lossy = d1WithMarkedBatches(/CASE WHEN/, async <T,>(statements: D1PreparedStatement[]) => {
        await env.DB.batch<T>(statements);
        throw new Error("D1_ERROR: Network connection lost.");
      });
      // The 20th is due at 02:00Z on the 21st; 02:50Z is the last tick of its catch-up hour.
      await billingJob({ ...env, DB: lossy }, setNow("2026-07-21T02:50:00Z")).catch(() => {});
      await billingJob(env, setNow("2026-07-21T03:00:00Z"));
      setNow("2026-07-21T03:05:00Z");
      const finance = await signIn("finance");
      const day = await billingOf("2026-07-20", id, finance);
      const download = await call(`/v1/billing/2026-07-20/download?format=csv`, authed(finance));
      expect({ revision: day.revision, open: day.open_clients, lines: day.lines.length, download: download.status }).toEqual({ revision: 1, open: 0, lines: 1, download: 200 });
    });
  });
});

/** CLIENT_COUNTER whose object of the one-shard client `clientId` does not answer ledger reads. */
function unansweringLedger(clientId: string): DurableObjectNamespace<ClientCounter> {
  const brokenId = env.CLIENT_COUNTER.idFromName(clientId).toString();
  return withMethods(env.CLIENT_COUNTER, {
    get: (objectId: DurableObjectId) => {
      const stub = env.CLIENT_COUNTER.get(objectId);
      if (objectId.toString() !== brokenId) return stub;
      return { ledgerLinesByDay: () => Promise.reject(new Error("Durable Object storage is over its limit")) } as unknown as DurableObjectStub<ClientCounter>;
    },
  } as Partial<DurableObjectNamespace<ClientCounter>>);
}

describe("a client whose object does not answer a tick", () => {
  it("is marked and left out while the others are billed, and billed at the tick after it answers", async () => {
    await onClock("2026-07-24T12:00:00Z", async (setNow) => {
      const token = await signIn("admin");
      const [ok, broken] = [unique("client"), unique("client")];
      for (const id of [ok, broken]) {
        expect((await postJson("/v1/admin/clients", { id, name: id, timezone: "UTC" }, token)).status).toBe(201);
        await ingest([status(id, unique("wamid"), "delivered", Date.now())]);
      }
      await expect(billingJob({ ...env, CLIENT_COUNTER: unansweringLedger(broken) }, setNow("2026-07-25T02:10:00Z"))).rejects.toThrow(/2026-07-24/);
      const finance = await signIn("finance");
      const [okDay, brokenDay] = [await billingOf("2026-07-24", ok, finance), await billingOf("2026-07-24", broken, finance)];
      expect([okDay.lines.length, okDay.open_clients, brokenDay.lines.length, brokenDay.open_clients]).toEqual([1, 0, 0, 1]);
      await billingJob(env, setNow("2026-07-25T02:20:00Z"));
      const healed = await billingOf("2026-07-24", broken, finance);
      expect([healed.lines.length, healed.open_clients, healed.lines[0]?.billable_count]).toEqual([1, 0, 1]);
    });
  });
});

describe("a client moved to a zone further east", () => {
  it("bills the days the new zone made due at the next tick, though another zone's run of them came first", async () => {
    await onClock("2026-11-05T16:00:00Z", async (setNow) => {
      const token = await signIn("admin");
      const client = async (timezone: string) => {
        const id = unique("client");
        expect((await postJson("/v1/admin/clients", { id, name: id, timezone }, token)).status).toBe(201);
        return { id };
      };
      const la = await client("America/Los_Angeles");
      await client("Asia/Tokyo");
      const card = { client_id: la.id, category: "marketing", country: "*", unit_price_micros: 50_000, currency: "BRL" };
      expect((await postJson("/v1/admin/rate-cards", card, token, "PUT")).status).toBe(200);
      // 08:00 on the 5th in Los Angeles, whose 5th is due on the 6th at 10:00Z.
      await ingest([status(la.id, unique("wamid"), "delivered", Date.now())]);
      // Tokyo's 5th is due at 17:00Z: that tick runs the 5th for Tokyo's clients.
      setNow("2026-11-05T17:00:00Z");
      await tick("2026-11-05T17:00:00Z");
      setNow("2026-11-05T18:00:00Z");
      expect((await postJson(`/v1/admin/clients/${la.id}`, { timezone: "Asia/Tokyo" }, token, "PATCH")).status).toBe(200);
      // Past the 5th's first hour in Tokyo, and a run of it began since: the plan alone skipped the
      // client, and the 5th read final without its line.
      expect((await billingOf("2026-11-05", la.id, token)).open_clients).toBe(1);
      setNow("2026-11-05T18:10:00Z");
      await tick("2026-11-05T18:10:00Z");
      const day = await billingOf("2026-11-05", la.id, token);
      expect([day.lines.map((l) => l.billable_count), day.open_clients]).toEqual([[1], 0]);
    });
  });
});

describe("a failed run", () => {
  it("leaves its clients' day open and retried by every tick, apart from the clients due then, until a run succeeds", async () => {
    const c = await createClient({ timezone: "Asia/Tokyo" });
    const tokyo = await createClient({ timezone: "Asia/Tokyo" });
    const utc = await createClient({ timezone: "UTC" });
    // No event of the day: only the failed run can leave its day open.
    const quiet = await createClient({ timezone: "UTC" });
    await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 1_000_000_000_000 });
    const messages = Array.from({ length: 9_010 }, () => status(c.id, unique("wamid"), "delivered", at("2026-11-05T03:00:00Z")));
    for (let i = 0; i < messages.length; i += 1_000) await ingest(messages.slice(i, i + 1_000));
    await ingest([status(utc.id, unique("wamid"), "delivered", at("2026-11-05T12:00:00Z")), status(tokyo.id, unique("wamid"), "delivered", at("2026-11-05T03:00:00Z"))]);
    // 9,010 × 10^12 micros is beyond 2^53: the run refuses to round it, and the day waits for both.
    const refused = await call("/v1/billing/2026-11-05/run", authed(await admin(), { method: "POST" }));
    expect(refused.status).toBe(422);
    for (const id of [c.id, tokyo.id, utc.id, quiet.id]) expect(await billingOf("2026-11-05", id)).toMatchObject({ open_clients: 1, lines: [] });

    // Tokyo's 5th comes due: the run of both Tokyo clients fails on the first one's line, and the
    // other is billed in a run without it.
    await expect(tick("2026-11-05T17:10:00Z")).rejects.toThrow("billing.daily failed");
    expect(await billingOf("2026-11-05", tokyo.id)).toMatchObject({ open_clients: 0, lines: [expect.objectContaining({ billable_count: 1 })] });
    expect(await billingOf("2026-11-05", c.id)).toMatchObject({ open_clients: 1, lines: [] });
    // UTC's 5th, marked by the failed run, is not due yet: that tick neither billed it nor cleared its mark.
    expect(await billingOf("2026-11-05", utc.id)).toMatchObject({ open_clients: 1, lines: [] });
    expect((await rebillsBetween(env.DB, "2026-11-05", "2026-11-05")).map((r) => r.client_id)).toContain(utc.id);

    // UTC's 5th comes due: its run goes apart from Tokyo's stale retry, which fails again (and the cron
    // job with it, as Cloudflare shows) until the card is fixed.
    await expect(tick("2026-11-06T02:10:00Z")).rejects.toThrow("billing.daily failed");
    expect(await billingOf("2026-11-05", utc.id)).toMatchObject({ open_clients: 0, lines: [expect.objectContaining({ billable_count: 1 })] });
    expect(await billingOf("2026-11-05", c.id)).toMatchObject({ open_clients: 1, lines: [] });

    await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 1_000 });
    await tick("2026-11-20T12:20:00Z");
    expect(await billingOf("2026-11-05", c.id)).toMatchObject({ open_clients: 0, lines: [expect.objectContaining({ billable_count: 9_010, amount_micros: 9_010_000 })] });
  }, 60_000);
});

describe("a day's provisional clients", () => {
  it("counts a client whose day has ended but is not yet due as open: another zone's run billed the day without it", async () => {
    const sp = await createClient({ timezone: "America/Sao_Paulo" });
    const manaus = await createClient({ timezone: "America/Manaus" });
    // Without events its day is never marked stale: it is open as of the day's latest run, long past as
    // that is, and a run that changes nothing closes it all the same. Its 18th is due at 07:00Z.
    const quiet = await createClient({ timezone: "America/Rio_Branco" });
    for (const c of [sp, manaus]) await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 50_000 });
    await ingest([status(sp.id, unique("wamid"), "delivered", at("2026-11-18T15:00:00Z")), status(manaus.id, unique("wamid"), "delivered", at("2026-11-18T15:00:00Z"))]);

    // São Paulo's 18th ended at 03:00Z and is due at 05:00Z; Manaus's ended at 04:00Z and is due at 06:00Z.
    // A tick at the very moment a day comes due bills it as final.
    await tick("2026-11-19T05:00:00Z");
    expect(await billingOf("2026-11-18", sp.id)).toMatchObject({ open_clients: 0, lines: [expect.objectContaining({ billable_count: 1 })] });
    expect(await billingOf("2026-11-18", manaus.id)).toMatchObject({ open_clients: 1, lines: [] });
    expect(await billingOf("2026-11-18", quiet.id)).toMatchObject({ open_clients: 1, lines: [] });

    await tick("2026-11-19T06:10:00Z");
    expect(await billingOf("2026-11-18", manaus.id)).toMatchObject({ open_clients: 0, lines: [expect.objectContaining({ billable_count: 1 })] });
    expect(await billingOf("2026-11-18", quiet.id)).toMatchObject({ open_clients: 1, lines: [] });
    await tick("2026-11-19T07:10:00Z");
    expect(await billingOf("2026-11-18", quiet.id)).toMatchObject({ open_clients: 0, lines: [] });
  });
});

describe("a billing tick's Durable Object calls", () => {
  it("reads each due client's ledgers once for all its recomputed days", async () => {
    const c = await createClient({ timezone: "Asia/Tokyo" });
    await rateCard({ client_id: c.id, category: "marketing", country: "*", unit_price_micros: 1_000 });
    await ingest([status(c.id, unique("wamid"), "delivered", at("2026-10-05T03:00:00Z"))]);
    const multi = vi.spyOn(ClientCounter.prototype, "ledgerLinesByDay");
    // Tokyo's 5 Oct closed at 15:00Z; due with grace at 17:00Z.
    await tick("2026-10-05T17:10:00Z");
    const mine = multi.mock.calls.filter((call) => call[0].includes("2026-10-05"));
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(mine.every((call) => call[0].length === 8)).toBe(true);
    expect((await billingOf("2026-10-05")).lines.find((l) => l.client_id === c.id)?.billable_count).toBe(1);
    vi.restoreAllMocks();
  });
});

describe("a catch-up hour without a tick", () => {
  it("bills the day at the next tick, however late, and then leaves it to the next day's recompute", async () => {
    // No events: nothing marks its day for re-billing, so only the tick's own plan can bill it.
    const quiet = await createClient({ timezone: "UTC" });
    // The 10th was due at 02:00Z on the 11th; the cron comes back at 09:10Z (a stack started then, an outage).
    await tick("2026-09-11T09:10:00Z");
    expect(await billingOf("2026-09-10", quiet.id)).toMatchObject({ revision: 1, open_clients: 0, lines: [] });
    const runs = await runsOf("2026-09-10");
    await tick("2026-09-11T09:20:00Z");
    expect(await runsOf("2026-09-10")).toBe(runs);
  });
});
