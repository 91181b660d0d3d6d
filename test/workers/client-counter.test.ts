import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { seenTableFor } from "../../durable-objects/client-counter-tables.ts";
import type { NotificationEvent } from "../../schema/event.ts";
import { DAY_MS, localDate, localDayStart } from "../../schema/time.ts";
import { unique } from "./helpers.ts";

const SP = { timezone: "America/Sao_Paulo" };
let n = 0;

function ev(over: Partial<NotificationEvent> = {}): NotificationEvent {
  n += 1;
  const message_id = over.message_id ?? `wamid.${n}`;
  const status = over.status ?? "delivered";
  return {
    event_id: `${message_id}:${status}`,
    message_id,
    client_id: "c",
    status,
    occurred_at: Date.UTC(2026, 10, 20, 12, 0, 0),
    received_at: Date.now(),
    category: "marketing",
    billable: true,
    pricing_type: "regular",
    recipient: "5511987654321",
    country: "BR",
    phone_number_id: "pn",
    template: null,
    error_code: null,
    error_title: null,
    source: "whatsapp",
    ...over,
  };
}

function counter(): { id: string; stub: DurableObjectStub<ClientCounter> } {
  const id = unique("cc");
  return { id, stub: env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(id)) };
}

describe("ClientCounter durability", () => {
  it("keeps counts, dedup and the ledger after eviction", async () => {
    const { id, stub } = counter();
    const e = ev();
    await stub.ingest({ id, ...SP }, [e, ev({ status: "sent" })]);
    await evictDurableObject(stub);
    const again = await stub.ingest({ id, ...SP }, [e]);
    expect(again).toMatchObject({ accepted: 0, duplicates: 1 });
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toEqual({ accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 });
    expect(await stub.ledgerLines("2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("deduplicates against earlier days' dedup tables, and drops them after retention", async () => {
    const { id, stub } = counter();
    const now = Date.now();
    const yesterday = seenTableFor(now - DAY_MS);
    const expired = seenTableFor(now - 12 * DAY_MS);
    await runInDurableObject(stub, (_instance, state) => {
      for (const t of [yesterday, expired]) {
        state.storage.sql.exec(`CREATE TABLE ${t} (event_id TEXT PRIMARY KEY) WITHOUT ROWID`);
        state.storage.sql.exec(`INSERT INTO ${t} VALUES ('seen-before:delivered')`);
      }
    });
    await evictDurableObject(stub);
    const res = await stub.ingest({ id, ...SP }, [ev({ event_id: "seen-before:delivered", message_id: "seen-before" }), ev()]);
    expect(res).toMatchObject({ accepted: 1, duplicates: 1 });
    const tables = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name LIKE 'seen_%' ORDER BY name").toArray().map((r) => r.name),
    );
    expect(tables).toEqual([yesterday, seenTableFor(now)]);
  });

  it("reports SQLite rows written, about one per event for a large batch", async () => {
    const { id, stub } = counter();
    const events = Array.from({ length: 1000 }, (_, i) => ev({ status: i % 2 ? "sent" : "read", billable: false }));
    const res = await stub.ingest({ id, ...SP }, events);
    expect(res.accepted).toBe(1000);
    // 1000 dedup rows, a few counter rows, one outbox row (+ its sequence), no ledger rows (not billable).
    expect(res.rowsWritten).toBeGreaterThanOrEqual(1000);
    expect(res.rowsWritten).toBeLessThan(1010);
  });
});

describe("dedup ids", () => {
  it("refuses a batch whose ids would not round-trip through SQLite, leaving no trace", async () => {
    const { id, stub } = counter();
    // Called inside the object: an RPC that throws also surfaces as an unhandled rejection in this isolate.
    await runInDurableObject(stub, (instance: ClientCounter) => {
      expect(() => instance.ingest({ id, ...SP }, [ev({ event_id: "lone-\ud800-surrogate" }), ev()])).toThrow(/round-trip/);
    });
    expect(await stub.totals(0, Number.MAX_SAFE_INTEGER)).toEqual({ accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 });
    // Nothing was committed, so the valid event of that batch is still new.
    const again = ev();
    expect(await stub.ingest({ id, ...SP }, [again])).toMatchObject({ accepted: 1 });
  });
});

describe("the billable-message ledger", () => {
  it("bills a message once on its first delivered/read, in the client's local day", async () => {
    const { id, stub } = counter();
    // 01:30 UTC on the 21st is still the 20th in São Paulo (UTC-3).
    const at = Date.UTC(2026, 10, 21, 1, 30);
    await stub.ingest({ id, ...SP }, [
      ev({ message_id: "m1", status: "delivered", occurred_at: at }),
      ev({ message_id: "m1", status: "read", occurred_at: at + 60_000 }),
    ]);
    await stub.ingest({ id, ...SP }, [ev({ message_id: "m1", status: "read", occurred_at: at + 60_000, event_id: "m1:read-retry" })]);
    expect(await stub.ledgerLines("2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
    expect(await stub.ledgerLines("2026-11-21")).toEqual([]);
  });

  it("does not bill sent, failed or free (service window, free entry point) messages", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, ...SP }, [
      ev({ status: "sent" }),
      ev({ status: "failed", billable: null, category: null, pricing_type: null }),
      ev({ status: "delivered", billable: false, pricing_type: "free_customer_service", category: "service" }),
      ev({ status: "read", billable: false, pricing_type: "free_entry_point", category: "marketing" }),
    ]);
    expect(await stub.ledgerLines("2026-11-20")).toEqual([]);
  });

  it("moves the bill to the earlier day when an earlier status arrives late (reordered delivery)", async () => {
    const { id, stub } = counter();
    const day2 = Date.UTC(2026, 10, 21, 15, 0);
    const day1 = Date.UTC(2026, 10, 20, 23, 0) - 6 * 3600_000;
    await stub.ingest({ id, ...SP }, [ev({ message_id: "late", status: "read", occurred_at: day2 })]);
    expect(await stub.ledgerLines("2026-11-21")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
    await stub.ingest({ id, ...SP }, [ev({ message_id: "late", status: "delivered", occurred_at: day1 })]);
    expect(await stub.ledgerLines("2026-11-21")).toEqual([]);
    expect(await stub.ledgerLines("2026-11-20")).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });

  it("groups billable messages by category and country, unknown ones under their own keys", async () => {
    const { id, stub } = counter();
    await stub.ingest({ id, timezone: "UTC" }, [
      ev({ category: "utility" }),
      ev({ category: "utility" }),
      ev({ category: "utility", country: "MX" }),
      ev({ category: null, country: null }),
    ]);
    expect(await stub.ledgerLines("2026-11-20")).toEqual([
      { category: "unknown", country: "ZZ", count: 1 },
      { category: "utility", country: "BR", count: 2 },
      { category: "utility", country: "MX", count: 1 },
    ]);
  });

  it("keeps billed ids in monthly partitions and drops those past retention without losing a month's totals", async () => {
    const { id, stub } = counter();
    const now = new Date();
    const ym = (back: number) => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - back, 15, 12));
      return { at: d.getTime(), table: `ledger_${d.toISOString().slice(0, 7).replace("-", "")}`, day: d.toISOString().slice(0, 10) };
    };
    const old = ym(4);
    const current = ym(0);
    await stub.ingest({ id, timezone: "UTC" }, [ev({ message_id: "old-msg", occurred_at: old.at })]);
    await stub.ingest({ id, timezone: "UTC" }, [ev({ message_id: "new-msg", occurred_at: current.at })]);
    const tables = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name GLOB 'ledger_[0-9]*'").toArray().map((r) => r.name),
    );
    expect(tables).toEqual([current.table]);
    expect(await stub.ledgerLines(old.day)).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
    expect(await stub.ledgerLines(current.day)).toEqual([{ category: "marketing", country: "BR", count: 1 }]);
  });
});

describe("today's totals", () => {
  it("stay equal to the minute counters as events arrive, including after eviction", async () => {
    const { id, stub } = counter();
    const tz = "America/Sao_Paulo";
    const now = Date.now();
    const sum = () => stub.totals(localDayStart(localDate(Date.now(), tz), tz), Number.MAX_SAFE_INTEGER);
    expect(await stub.today(tz)).toEqual(await sum());
    await stub.ingest({ id, timezone: tz }, [ev({ occurred_at: now, status: "sent" }), ev({ occurred_at: now, status: "read" })]);
    await stub.ingest({ id, timezone: tz }, [ev({ occurred_at: now - 3 * 86_400_000, status: "sent" })]);
    expect(await stub.today(tz)).toEqual({ accepted: 0, sent: 1, delivered: 0, read: 1, failed: 0 });
    expect(await stub.today(tz)).toEqual(await sum());
    await evictDurableObject(stub);
    await stub.ingest({ id, timezone: tz }, [ev({ occurred_at: now, status: "failed" })]);
    expect(await stub.today(tz)).toEqual({ accepted: 0, sent: 1, delivered: 0, read: 1, failed: 1 });
    expect(await stub.today("UTC")).toEqual(await stub.totals(Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`), Number.MAX_SAFE_INTEGER));
  });
});
