/**
 * "Recipient numbers are personal data (LGPD): never logged" (DESIGN.md, Security). One recipient
 * number, unique to this run, is driven through every path that logs: valid and malformed webhooks
 * and bridged batches, a full object, R2 not answering, a counter failing, a dead-letter list and
 * replay, a lake flush, a report export, a billing run and the number's erasure. No console line (log, info, warn, error,
 * debug) may carry its digits, nor the audit log.
 */
import { env } from "cloudflare:workers";
import { DrizzleQueryError } from "drizzle-orm/errors";
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { utcDate } from "../../schema/time.ts";
import { billingJob } from "../../workers/billing/schedule.ts";
import { ApiError } from "../../workers/errors.ts";
import { logLine } from "../../workers/log.ts";
import { clearOfMinuteTurn } from "../minute-turn.ts";
import { admin, authed, call, createClient, failingBucket, ingestKey, postEvents, postWebhook, putFailingOnce, unique, withClock, withClockAhead, withEnv, withMethods } from "./helpers.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { fillUp } from "./full-storage.ts";
import { askErasure, settleErasure } from "./erasure-fixtures.ts";
import { setBucket } from "./lake-fixtures.ts";

const DIGITS = String(Math.floor(Math.random() * 1e5)).padStart(5, "0");
/** The recipient: a Brazilian mobile number no other test uses. */
const RECIPIENT = `55119000${DIGITS}`;
/** Its national part: what a masked or reformatted number would still show. */
const NATIONAL = `9000${DIGITS}`;

const levels = ["log", "info", "warn", "error", "debug"] as const;
let spies: MockInstance[] = [];
const lines: string[] = [];

function capture(): void {
  spies = levels.map((level) =>
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.name}: ${a.message} ${String(a.cause)}` : JSON.stringify(a))).join(" "));
    }),
  );
}

function leaks(): string[] {
  return lines.filter((l) => l.includes(RECIPIENT) || l.includes(NATIONAL));
}

describe("a recipient's number in the logs", () => {
  beforeAll(() => capture());
  afterAll(() => {
    for (const s of spies) s.mockRestore();
  });

  it("is never logged, whichever path its events take", async () => {
    clearOfMinuteTurn();
    const { id, phones } = await createClient();
    const full = await createClient();
    const key = await ingestKey();
    const now = Date.now() - 60_000;
    const nowS = Math.floor(now / 1000);
    const wamid = () => `wamid.${unique("m")}`;

    // Valid bridged batch and webhook.
    expect((await postEvents([status(id, wamid(), "sent", now, { recipient: RECIPIENT })], key)).status).toBe(200);
    expect((await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: RECIPIENT })] }]))).status).toBe(200);

    // Malformed bridged records: wrong types, a country not derivable, a future time, an unknown client, a bad recipient.
    const bad = [
      status(id, wamid(), "sent", now, { recipient: RECIPIENT, occurred_at: String(now) }),
      status(id, wamid(), "sent", now, { recipient: RECIPIENT, billable: "yes" }),
      status(id, wamid(), "sent", now, { recipient: RECIPIENT, country: "XX" }),
      status(id, wamid(), "sent", now, { recipient: RECIPIENT, country: undefined }),
      status(id, wamid(), "sent", now + 30 * 86_400_000, { recipient: RECIPIENT }),
      status(unique("nobody"), wamid(), "sent", now, { recipient: RECIPIENT }),
      status(id, wamid(), "sent", now, { recipient: `+${RECIPIENT}x` }),
      status(id, wamid(), "bogus", now, { recipient: RECIPIENT }),
      { event_id: RECIPIENT, recipient: RECIPIENT },
      RECIPIENT,
    ];
    const statuses: string[] = [];
    const badRes = await postEvents(bad, key);
    expect(badRes.status).toBe(200);
    expect(((await badRes.json()) as { rejected: unknown[] }).rejected.length).toBeGreaterThan(5);
    // NDJSON with a broken line, a whole body that is not JSON, and one the size limit refuses.
    await postEvents(`${JSON.stringify(status(id, wamid(), "sent", now, { recipient: RECIPIENT }))}\n{"recipient":"${RECIPIENT}",`, key, "application/x-ndjson");
    await postEvents(`[{"recipient":"${RECIPIENT}", NaN}]`, key);
    await postEvents(`{"events": {"recipient":"${RECIPIENT}"}}`, key);

    // Malformed webhooks: unknown phone number, future time, wrong types, an unlisted recipient shape, unsigned.
    for (const s of [
      statusObject({ id: wamid(), status: "sent", timestamp: nowS + 30 * 86_400, recipient: RECIPIENT }),
      statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: RECIPIENT, extra: { timestamp: { at: RECIPIENT } } }),
      statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: RECIPIENT, extra: { recipient_id: Number(RECIPIENT) } }),
      statusObject({ id: wamid(), status: "weird", timestamp: nowS, recipient: RECIPIENT }),
      statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: `${RECIPIENT}@s.whatsapp.net` }),
      statusObject({ id: wamid(), status: "failed", timestamp: nowS, recipient: RECIPIENT, errors: [{ code: 131026, title: `undeliverable to ${RECIPIENT}` }] }),
    ]) {
      await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [s] }]));
    }
    await postWebhook(webhook([{ phoneNumberId: unique("pn"), statuses: [statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: RECIPIENT })] }]));
    await postWebhook(`{"entry":[{"changes":[{"value":{"statuses":[{"recipient_id":"${RECIPIENT}"`);
    await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: RECIPIENT })] }]), "sha256=00");

    // A full object: bridged and webhook events dead-lettered, a replay that keeps them while it is full.
    const state = { full: true };
    await fillUp(counterOf(env, full.id), state);
    await postEvents([status(full.id, wamid(), "sent", now, { recipient: RECIPIENT })], key);
    await postWebhook(webhook([{ phoneNumberId: full.phones[0]!, statuses: [statusObject({ id: wamid(), status: "sent", timestamp: nowS, recipient: RECIPIENT })] }]));
    const replay = () => call(`/v1/admin/dead-letters/replay?date=${utcDate(Date.now())}`, authed(token, { method: "POST" }));
    const token = await admin();
    const early = await replay();
    expect([early.status, JSON.stringify(await early.json())]).toEqual([200, expect.stringContaining('"code":"client_storage_full"')]);

    // A counter failing as an overloaded object does (503), and R2 refusing the dead letters' writes.
    const failing = withMethods(env.CLIENT_COUNTER, {
      get: () => ({ ingest: () => Promise.reject(new Error("Durable Object is overloaded. Too many requests queued.")) }) as unknown as DurableObjectStub<ClientCounter>,
    } as Partial<DurableObjectNamespace<ClientCounter>>);
    const bridged = (records: unknown[]) => ({ method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(records) });
    expect((await withEnv({ CLIENT_COUNTER: failing }, "/v1/ingest/events", bridged([status(id, wamid(), "sent", now, { recipient: RECIPIENT })]))).status).toBe(503);
    await withEnv({ LAKE: failingBucket }, "/v1/ingest/events", bridged([status(id, wamid(), "sent", now, { recipient: RECIPIENT, billable: "yes" })]));
    await withEnv({ LAKE: failingBucket }, "/v1/ingest/events", bridged([status(full.id, wamid(), "sent", now, { recipient: RECIPIENT })]));

    // The dead letters listed, then replayed with room again.
    const list = await call(`/v1/admin/dead-letters?date=${utcDate(Date.now())}`, authed(token));
    statuses.push(`list ${list.status} ${(await list.text()).length}`);
    state.full = false;
    const replayed = await replay();
    statuses.push(`replay ${replayed.status} ${await replayed.text()}`);

    // The lake flushed (the first with the Worker's R2 binding down; the flushing object writes through its own binding,
    // so lake_flush_failed is not driven here), a report exported, the day billed.
    const f1 = await withEnv({ LAKE: failingBucket }, `/v1/admin/flush?client_id=${id}`, authed(token, { method: "POST" }));
    statuses.push(`flush-down ${f1.status} ${await f1.text()}`);
    const f2 = await call(`/v1/admin/flush?client_id=${id}`, authed(token, { method: "POST" }));
    statuses.push(`flush ${f2.status} ${await f2.text()}`);
    const from = new Date(now - 3_600_000).toISOString();
    const to = new Date(now + 3_600_000).toISOString();
    for (const format of ["csv", "parquet"]) {
      const res = await call(`/v1/clients/${id}/report?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&format=${format}&recipient=${RECIPIENT}`, authed(token));
      statuses.push(`report ${format} ${res.status} ${(await res.arrayBuffer()).byteLength}`);
    }
    const sampled = await withEnv({ ACCESS_LOG_SAMPLE_RATE: "1" }, `/v1/clients/${id}/report?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&format=csv&recipient=${RECIPIENT}`, authed(token));
    await sampled.arrayBuffer();
    expect(lines.some((l) => l.includes(`"path":"/v1/clients/${id}/report"`))).toBe(true);
    const csv = await (await call(`/v1/clients/${id}/report?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}&format=csv`, authed(token))).text();
    expect(csv).toContain(RECIPIENT); // the export does carry it: the path was exercised
    const bill = await call(`/v1/billing/${utcDate(now)}/run`, authed(token, { method: "POST" }));
    statuses.push(`bill ${bill.status} ${await bill.text()}`);

    expect(lines.length).toBeGreaterThan(0);
    expect(leaks()).toEqual([]);
    const audit = await env.DB.prepare("SELECT actor, action, target, details FROM audit_log").all();
    expect(JSON.stringify(audit.results)).not.toContain(NATIONAL);
    expect(statuses.map((s) => s.split(" ").slice(0, s.startsWith("report") ? 3 : 2).join(" "))).toEqual(["list 200", "replay 200", "flush-down 200", "flush 200", "report csv 200", "report parquet 200", "bill 200"]);
    expect(statuses.join("\n")).not.toContain(NATIONAL); // the dead-letter list and replay name reasons, not inputs
    // The full client's and the storage-unavailable paths did log (so the check below means something).
    const events = lines.map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(expect.arrayContaining(["counter_storage_full", "counter_ingest_failed", "downstream_unavailable", "dead_letter_unavailable", "request"]));
  });

  it("is never logged when its erasure is asked, refused, fails once and is done", async () => {
    const { id } = await createClient();
    const now = Date.now() - 60_000;
    await postEvents([status(id, `wamid.${unique("m")}`, "sent", now, { recipient: RECIPIENT }), status(id, `wamid.${unique("m")}`, "sent", now)], await ingestKey());
    await call(`/v1/admin/flush?client_id=${id}`, authed(await admin(), { method: "POST" }));
    expect((await askErasure(id, `${RECIPIENT}x`)).status).toBe(400);
    expect((await askErasure(unique("nobody"), RECIPIENT)).status).toBe(404);
    await setBucket(id, putFailingOnce());
    const res = await withEnv({ ACCESS_LOG_SAMPLE_RATE: "1" }, `/v1/admin/clients/${id}/erasures`, authed(await admin(), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ recipient: RECIPIENT }) }));
    expect(res.status).toBe(202);
    const { id: erasure } = (await res.json()) as { id: string };
    await settleErasure(id, erasure, { failures: 0 });
    expect(await withClockAhead(61_000, () => settleErasure(id, erasure))).toMatchObject({ status: "done", rows_removed: 1 });

    const events = lines.map((l) => (JSON.parse(l) as { event: string }).event);
    expect(events).toEqual(expect.arrayContaining(["erasure_failed", "erasure_done"]));
    expect(leaks()).toEqual([]);
    const audit = await env.DB.prepare("SELECT details FROM audit_log WHERE action = 'recipient.erase'").all();
    expect(JSON.stringify(audit.results)).not.toContain(NATIONAL);
  });
});

describe("an unlisted pricing category", () => {
  it("does not put what it holds (a number, here) in the log", async () => {
    const recipient = `55119000${String(Math.floor(Math.random() * 1e5)).padStart(5, "0")}`;
    const { phones } = await createClient();
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    try {
      const s = statusObject({ id: `wamid.${unique("m")}`, status: "sent", timestamp: Math.floor(Date.now() / 1000) - 60, recipient, category: `to ${recipient}` });
      const res = await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [s] }]));
      expect(res.status).toBe(200);
      const lines = warn.mock.calls.map((c) => String(c[0]));
      expect(lines.filter((l) => l.includes(recipient))).toEqual([]);
      // Said, by its length: the first unreadable category this isolate met (no test of this file sends another).
      const said = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === "webhook_unlisted_pricing");
      expect(said).toEqual([expect.objectContaining({ field: "category", value: null, value_chars: 16 })]);
    } finally {
      warn.mockRestore();
    }
  });
});

describe("an error whose cause is a failed drizzle query", () => {
  it("is logged without the query's params, wrapped or not", () => {
    const err = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const query = new DrizzleQueryError("select * from users where email = ?", ["someone@example.com"], new Error("D1_ERROR: Network connection lost."));
      logLine("error", "direct", {}, query);
      logLine("error", "wrapped", {}, new ApiError(503, "billing_unavailable", "billing failed; retry", undefined, query));
      expect(err.mock.calls.map((c) => String(c[0])).filter((l) => l.includes("someone@example.com"))).toEqual([]);
    } finally {
      err.mockRestore();
    }
  });

  it("a cron billing run whose statement fails logs no params (billing_tick_failed)", async () => {
    const { id } = await createClient();
    const day = Date.parse("2026-07-10T12:00:00Z");
    await withClock(() => day, () => ingest([status(id, unique("wamid"), "delivered", day)]));
    const lost = () => Promise.reject(new Error("D1_ERROR: Network connection lost."));
    const DB = withMethods(env.DB, {
      prepare: (query: string) => {
        const statement = env.DB.prepare(query);
        if (!/from "rate_cards"/.test(query)) return statement;
        return withMethods(statement, { bind: () => withMethods(statement, { run: lost, all: lost, raw: lost, first: lost }) });
      },
    });
    const err = vi.spyOn(console, "error").mockImplementation(() => {});
    const info = vi.spyOn(console, "info").mockImplementation(() => {});
    try {
      const at = Date.parse("2026-07-11T02:00:00Z");
      await withClock(() => at, () => billingJob({ ...env, DB }, at)).catch(() => {});
      const lines = [...err.mock.calls, ...info.mock.calls].map((c) => String(c[0]));
      expect(lines.filter((l) => l.includes("params:"))).toEqual([]);
    } finally {
      err.mockRestore();
      info.mockRestore();
    }
  });
});
