import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { utcDate } from "../../schema/time.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { clearOfMinuteTurn } from "../minute-turn.ts";
import { admin, authed, call, counters, createClient, deadLetters, ingestKey, postEvents, postJson, postWebhook, signIn, unique, withClockAhead, withEnv, withMethods } from "./helpers.ts";

const T0 = Date.UTC(2026, 10, 20, 12, 30, 15);
const sec = (ms: number) => Math.floor(ms / 1000);
const today = () => utcDate(Date.now());
const DAY_RANGE = ["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"] as const;

interface Replay {
  letters: number;
  resolved: number;
  accepted: number;
  duplicates: number;
  remaining: { key: string; rejections: { at: number | string; code: string }[] }[];
  next: string | null;
}

async function replay(query = `date=${today()}`): Promise<Replay> {
  const res = await call(`/v1/admin/dead-letters/replay?${query}`, authed(await admin(), { method: "POST" }));
  expect(res.status).toBe(200);
  return (await res.json()) as Replay;
}

async function letterWith(text: string): Promise<string> {
  const letter = (await deadLetters()).find((l) => l.body.input.includes(text));
  if (!letter) throw new Error(`no dead letter holds ${text}`);
  return letter.key;
}

const exists = async (key: string) => (await env.LAKE.head(key)) !== null;

/** A bridged letter as an older worker left it (no `input_form`), under today's prefix. */
async function keepOldLetter(letter: { rejections: unknown[]; client_scope?: string; input: string }): Promise<string> {
  const key = `dlq/date=${today()}/${crypto.randomUUID()}.json`;
  await env.LAKE.put(key, JSON.stringify({ received_at: Date.now(), source: "kafka", content_type: "application/json", client_scope: null, ...letter }));
  return key;
}

const storedLetter = async (key: string) => JSON.parse(await (await env.LAKE.get(key))!.text()) as { input_form?: string; rejections: { at: unknown; code: string }[] };

const bridged = (clientId: string, id: string, over: Record<string, unknown> = {}) => ({
  event_id: id, message_id: `m-${id}`, client_id: clientId, status: "sent", occurred_at: T0, recipient: "5511987654321", ...over,
});

describe("dead letters: listed with their reasons, replayed once what they lacked exists", () => {
  // A letter is filed under the day it was written and listed by today(): the day must not turn in
  // between (it turns only at a minute turn).
  beforeEach(() => clearOfMinuteTurn());

  it("stores a webhook's statuses once their phone number belongs to a client, then deletes the letter", async () => {
    const { id, phones } = await createClient();
    const lateNumber = unique("late-pn");
    const wamid = `wamid.${unique("m")}`;
    const res = await postWebhook(
      webhook([
        { phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("k")}`, status: "sent", timestamp: sec(T0) })] },
        {
          phoneNumberId: lateNumber,
          statuses: [statusObject({ id: wamid, status: "sent", timestamp: sec(T0) }), statusObject({ id: wamid, status: "delivered", timestamp: sec(T0) + 5 })],
        },
      ]),
    );
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 2 });
    const key = await letterWith(lateNumber);

    const listed = await call(`/v1/admin/dead-letters?date=${today()}&limit=200`, authed(await admin()));
    expect(listed.status).toBe(200);
    const list = (await listed.json()) as { letters: Record<string, unknown>[] };
    const entry = list.letters.find((l) => l.key === key)!;
    expect(entry).toMatchObject({ source: "whatsapp", rejections: [{ code: "unknown_phone_number" }, { code: "unknown_phone_number" }] });
    expect(entry).not.toHaveProperty("input");

    // Still unknown: the letter stays as it was.
    const early = await replay();
    expect(early.remaining.find((r) => r.key === key)?.rejections.map((r) => r.code)).toEqual(["unknown_phone_number", "unknown_phone_number"]);
    expect(await exists(key)).toBe(true);

    const patched = await postJson(`/v1/admin/clients/${id}`, { phone_number_ids: [phones[0]!, lateNumber] }, await admin(), "PATCH");
    expect(patched.status).toBe(200);
    const done = await replay();
    expect(done.accepted).toBeGreaterThanOrEqual(2);
    expect(done.duplicates).toBeGreaterThanOrEqual(1);
    expect(done.remaining.some((r) => r.key === key)).toBe(false);
    expect(await exists(key)).toBe(false);
    const minutes = (await counters(id, ...DAY_RANGE)).body.minutes;
    expect(minutes).toEqual([expect.objectContaining({ minute: Date.UTC(2026, 10, 20, 12, 30), sent: 2, delivered: 1 })]);

    // Replaying again finds nothing of it: the counts stay.
    await replay();
    expect((await counters(id, ...DAY_RANGE)).body.minutes).toEqual(minutes);
  });

  it("stores bridged records of a client created later, at their original index, and keeps what is still invalid", async () => {
    const existing = await createClient();
    const later = unique("later");
    const ok = unique("ok");
    // The first record is stored at once, so the letter's records sit at indexes other than their place in it.
    const res = await postEvents([bridged(existing.id, unique("stored")), bridged(later, ok), bridged(later, unique("bad"), { recipient: undefined })], await ingestKey());
    expect(((await res.json()) as { rejected: { index: number; code: string }[] }).rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "unknown_client"],
      [2, "invalid_event"],
    ]);
    const key = await letterWith(ok);

    await createClient({ id: later });
    const done = await replay();
    expect(done.remaining.find((r) => r.key === key)?.rejections).toEqual([{ at: 2, code: "invalid_event", message: expect.stringContaining("recipient") }]);
    expect(await exists(key)).toBe(true);
    expect((await counters(later, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
    // The list shows what is still outstanding; replaying again stores nothing twice.
    const listed = (await (await call(`/v1/admin/dead-letters?date=${today()}&limit=200`, authed(await admin()))).json()) as { letters: { key: string; rejections: unknown[] }[] };
    expect(listed.letters.find((l) => l.key === key)?.rejections).toEqual([{ at: 2, code: "invalid_event", message: expect.stringContaining("recipient") }]);
    const again = await replay();
    expect(again.remaining.find((r) => r.key === key)?.rejections).toEqual([{ at: 2, code: "invalid_event", message: expect.stringContaining("recipient") }]);
    expect((await counters(later, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
  });

  it("keeps a batch's ingest-key scope: a record the scoped key could not send stays refused", async () => {
    const own = await createClient();
    const other = await createClient();
    const mine = unique("mine");
    const theirs = unique("theirs");
    // A letter as an older parser left it: both records refused, the key limited to `own`.
    const records = [bridged(own.id, mine), bridged(other.id, theirs)].map((r, index) => ({ index, record: JSON.stringify(r) }));
    const key = await keepOldLetter({
      rejections: records.map((r) => ({ at: r.index, code: "invalid_event", message: "refused by an older parser" })),
      client_scope: own.id,
      input: JSON.stringify(records),
    });
    // And as the ingest route keeps a scoped key's letter: the foreign record beside one of its own.
    const res = await postEvents([bridged(own.id, unique("mine")), bridged(other.id, unique("theirs"), { recipient: undefined }), bridged(other.id, theirs)], await ingestKey(own.id));
    expect(((await res.json()) as { rejected: { code: string }[] }).rejected.map((r) => r.code)).toEqual(["invalid_event", "client_not_allowed"]);
    const routed = (await deadLetters()).find((l) => l.key !== key && l.body.input.includes(theirs))!.key;

    const done = await replay();
    expect(done.remaining.find((r) => r.key === key)?.rejections).toEqual([{ at: 1, code: "client_not_allowed", message: expect.any(String) }]);
    expect(done.remaining.find((r) => r.key === routed)?.rejections.map((r) => [r.at, r.code])).toEqual([
      [1, "invalid_event"],
      [2, "client_not_allowed"],
    ]);
    expect((await counters(own.id, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 2 })]);
    expect((await counters(other.id, ...DAY_RANGE)).body.minutes).toEqual([]);
  });

  it("keeps a letter per ingest-key scope when two keys send the same refused batch (the scope decides what its replay may store)", async () => {
    const own = await createClient();
    const id = unique("bad");
    const bad = [bridged(own.id, id, { recipient: undefined })];
    for (const key of [await ingestKey(own.id), await ingestKey()]) expect((await postEvents(bad, key)).status).toBe(200);
    const scopes = (await deadLetters()).filter((l) => l.body.input.includes(id)).map((l) => (l.body as { client_scope?: string | null }).client_scope);
    expect(scopes).toHaveLength(2);
    expect(new Set(scopes)).toEqual(new Set([own.id, null]));
  });

  for (const shape of ["array", "events"] as const) {
    it(`reads a batch kept whole (${shape}) as its body after a replay split it and narrowed its rejections`, async () => {
      const existing = await createClient();
      const later = unique("later");
      const records = [bridged(existing.id, unique("e")), bridged(later, unique("e"))];
      const key = await keepOldLetter({
        rejections: [{ at: "", code: "malformed", message: "refused by an older parser" }],
        input: JSON.stringify(shape === "array" ? records : { events: records }),
      });

      const first = await replay();
      expect(first.remaining.find((r) => r.key === key)?.rejections.map((r) => [r.at, r.code])).toEqual([[1, "unknown_client"]]);
      // The `malformed` that told a kept body from kept records is gone: the letter says its form.
      expect(await storedLetter(key)).toMatchObject({ input_form: "body", rejections: [{ at: 1, code: "unknown_client" }] });

      await createClient({ id: later });
      const second = await replay();
      expect(second.remaining.some((r) => r.key === key)).toBe(false);
      expect(await exists(key)).toBe(false);
      expect((await counters(existing.id, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
      expect((await counters(later, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
    });

    it(`reads a batch kept whole (${shape}) that an older replay narrowed without its form as its body`, async () => {
      const later = await createClient();
      const records = [bridged(later.id, unique("e"))];
      const key = await keepOldLetter({
        rejections: [{ at: 0, code: "unknown_client", message: "narrowed by an older replay" }],
        input: JSON.stringify(shape === "array" ? records : { events: records }),
      });
      const done = await replay();
      expect(done.remaining.some((r) => r.key === key)).toBe(false);
      expect(await exists(key)).toBe(false);
      expect((await counters(later.id, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
    });
  }

  it("keeps a batch that is not UTF-8 refused on replay, as ingest refuses it", async () => {
    const { id } = await createClient();
    const e = unique("e");
    const bytes = new TextEncoder().encode(JSON.stringify([bridged(id, e, { template: "tpl_XX" })]));
    const at = bytes.indexOf("X".charCodeAt(0));
    bytes.set([0xff, 0xfe], at);
    const res = await call("/v1/ingest/events", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${await ingestKey()}` }, body: bytes });
    expect(res.status).toBe(400);
    const key = await letterWith(e);
    const kept = await storedLetter(key);

    const done = await replay();
    expect(done.remaining.find((r) => r.key === key)?.rejections).toEqual([{ at: "", code: "malformed", message: expect.stringContaining("not UTF-8") }]);
    expect(await storedLetter(key)).toEqual(kept);
    expect((await counters(id, ...DAY_RANGE)).body.minutes).toEqual([]);
  });

  it("does not bring back a letter that a later replay resolved while a slower one narrowed it", async () => {
    const x = unique("x");
    const y = unique("y");
    const res = await postEvents([bridged(x, unique("e")), bridged(y, unique("e"))], await ingestKey());
    expect(res.status).toBe(200);
    const key = await letterWith(y);
    await createClient({ id: x });
    let raced = false;
    // The slow replay stored x's event and is about to narrow the letter to y's: meanwhile y is set up
    // and another replay stores the rest and deletes the letter.
    const lake = withMethods(env.LAKE, {
      put: (async (k: string, value: string, opts?: R2PutOptions) => {
        if (k === key && !raced) {
          raced = true;
          await createClient({ id: y });
          expect((await replay()).resolved).toBeGreaterThanOrEqual(1);
          expect(await exists(key)).toBe(false);
        }
        return env.LAKE.put(k, value, opts);
      }) as R2Bucket["put"],
    });
    const slow = await withEnv({ LAKE: lake }, `/v1/admin/dead-letters/replay?date=${today()}`, authed(await admin(), { method: "POST" }));
    expect(slow.status).toBe(200);
    expect(raced).toBe(true);
    expect(await exists(key)).toBe(false);
    expect((await counters(y, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
  });

  it("keeps one letter for a request and its retries (the same name, written again)", async () => {
    const lateNumber = unique("retried-pn");
    const body = webhook([{ phoneNumberId: lateNumber, statuses: [statusObject({ id: `wamid.${unique("r")}`, status: "sent", timestamp: sec(T0) })] }]);
    for (let i = 0; i < 3; i++) expect((await postWebhook(body)).status).toBe(200);
    const other = webhook([{ phoneNumberId: lateNumber, statuses: [statusObject({ id: `wamid.${unique("r")}`, status: "sent", timestamp: sec(T0) })] }]);
    expect((await postWebhook(other)).status).toBe(200);
    const letters = (await deadLetters()).filter((l) => l.body.input.includes(lateNumber));
    expect(letters.map((l) => l.body.input).sort()).toEqual([body, other].map((b) => JSON.stringify(b)).sort());
    expect(letters[0]!.key).toMatch(/^dlq\/date=\d{4}-\d{2}-\d{2}\/[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.json$/);
  });

  it("keeps one letter for a batch and its retries when a reason names the time of receipt (occurred_in_future)", async () => {
    const { id } = await createClient();
    const messageId = `wamid.${unique("future")}`;
    const batch = [{ event_id: `${messageId}:sent`, message_id: messageId, client_id: id, status: "sent", occurred_at: Date.now() + 3 * 3_600_000, recipient: "5511987654321" }];
    const key = await ingestKey();
    for (let i = 0; i < 3; i++) {
      expect(await (await postEvents(batch, key)).json()).toEqual({ accepted: 0, duplicates: 0, rejected: [expect.objectContaining({ index: 0, code: "occurred_in_future" })] });
      await scheduler.wait(5);
    }
    expect((await deadLetters()).filter((l) => l.body.input.includes(messageId))).toHaveLength(1);
  });

  it("keeps malformed input as it is", async () => {
    const body = `{"object":"whatsapp_business_account","entry":[{"id":"x","changes":[{"field":"messages","value":{"statuses":[{"id":"${unique("w")}"}]}}]}]}`;
    expect(await (await postWebhook(body)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    const key = await letterWith(body);
    const done = await replay();
    expect(done.remaining.find((r) => r.key === key)?.rejections.every((r) => r.code === "malformed")).toBe(true);
    expect(await exists(key)).toBe(true);
  });

  it("pages through a day's letters", async () => {
    for (let i = 0; i < 3; i++) await postWebhook(webhook([{ phoneNumberId: unique("nobody"), statuses: [statusObject({ id: `wamid.${unique("p")}`, status: "sent", timestamp: sec(T0) })] }]));
    const seen: string[] = [];
    let next: string | null = null;
    do {
      const res = await call(`/v1/admin/dead-letters?date=${today()}&limit=2${next ? `&start_after=${encodeURIComponent(next)}` : ""}`, authed(await admin()));
      const page = (await res.json()) as { letters: { key: string }[]; next: string | null };
      expect(page.letters.length).toBeLessThanOrEqual(2);
      seen.push(...page.letters.map((l) => l.key));
      next = page.next;
    } while (next);
    expect(seen).toEqual((await deadLetters()).map((l) => l.key).filter((k) => k.startsWith(`dlq/date=${today()}/`)));
  });

  it("refuses a day whose letters may be Meta retries of events in a month whose dedup table is gone", async () => {
    const now = new Date();
    const [y, m] = [now.getUTCFullYear(), now.getUTCMonth()];
    const firstDelivery = Date.UTC(y, m + 1, 0, 23, 0);
    const metaRetry = Date.UTC(y, m + 1, 2, 10, 0);
    const { phones } = await createClient();
    const wamid = `wamid.${unique("m")}`;
    const body = webhook([
      { phoneNumberId: phones[0]!, statuses: [statusObject({ id: wamid, status: "sent", timestamp: sec(firstDelivery - 60_000) })] },
      { phoneNumberId: unique("nobody"), statuses: [statusObject({ id: `wamid.${unique("u")}`, status: "sent", timestamp: sec(firstDelivery - 60_000) })] },
    ]);
    // Stored on a month's last day; Meta's retry two days later, in the next month, leaves the same letter.
    const atTime = <T,>(instant: number, fn: () => Promise<T>) => withClockAhead(instant - Date.now(), fn);
    expect(await atTime(firstDelivery, async () => (await postWebhook(body)).json())).toMatchObject({ accepted: 1, ignored: 1 });
    expect(await atTime(metaRetry, async () => (await postWebhook(body)).json())).toMatchObject({ accepted: 0, duplicates: 1 });
    // Three months on, the retry's own month is still kept but the first delivery's is not.
    const replayed = await atTime(Date.UTC(y, m + 3, 5, 10, 0), async () =>
      call(`/v1/admin/dead-letters/replay?date=${utcDate(metaRetry)}`, authed(await signIn("admin"), { method: "POST" })),
    );
    expect(replayed.status).toBe(400);
    expect(((await replayed.json()) as { error: { code: string } }).error.code).toBe("outside_dedup_window");
    // A week into that month, every letter's events are within the kept tables.
    expect(await atTime(Date.UTC(y, m + 3, 5, 10, 0), async () => (await call(`/v1/admin/dead-letters/replay?date=${utcDate(Date.UTC(y, m + 1, 8))}`, authed(await signIn("admin"), { method: "POST" }))).status)).toBe(200);
  });

  it("answers 503 when R2 does not answer, listing or replaying, and the retry replays the letter", async () => {
    const { id, phones } = await createClient();
    const lateNumber = unique("late-pn");
    const sent = statusObject({ id: `wamid.${unique("m")}`, status: "sent", timestamp: sec(T0) });
    expect((await postWebhook(webhook([{ phoneNumberId: lateNumber, statuses: [sent] }]))).status).toBe(200);
    const key = await letterWith(lateNumber);
    const token = await admin();
    expect((await postJson(`/v1/admin/clients/${id}`, { phone_number_ids: [...phones, lateNumber] }, token, "PATCH")).status).toBe(200);
    const r2Down = () => Promise.reject(new Error("We encountered an internal error. Please try again. (10001)"));
    const answers = [];
    for (const failing of ["list", "get", "delete"] as const) {
      const lake = withMethods(env.LAKE, { [failing]: r2Down });
      const listing = await withEnv({ LAKE: lake }, `/v1/admin/dead-letters?date=${today()}`, authed(token));
      const replaying = await withEnv({ LAKE: lake }, `/v1/admin/dead-letters/replay?date=${today()}`, authed(token, { method: "POST" }));
      answers.push([failing, listing.status, replaying.status, ((await replaying.json()) as { error: { code: string } }).error.code]);
    }
    expect(answers).toEqual([
      ["list", 503, 503, "storage_unavailable"],
      ["get", 503, 503, "storage_unavailable"],
      // The events were stored before the delete failed: the retry finds them as duplicates.
      ["delete", 200, 503, "storage_unavailable"],
    ]);
    expect(await exists(key)).toBe(true);
    expect((await replay()).duplicates).toBeGreaterThanOrEqual(1);
    expect(await exists(key)).toBe(false);
    expect((await counters(id, ...DAY_RANGE)).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
  });

  it("refuses days older than the dedup tables, bad queries, and anyone but an admin", async () => {
    const old = await call("/v1/admin/dead-letters/replay?date=2025-01-01", authed(await admin(), { method: "POST" }));
    expect(old.status).toBe(400);
    expect(((await old.json()) as { error: { code: string } }).error.code).toBe("outside_dedup_window");
    for (const q of ["", "date=yesterday", `date=${today()}&limit=0`, `date=${today()}&start_after=lake/x`]) {
      expect((await call(`/v1/admin/dead-letters?${q}`, authed(await admin()))).status).toBe(400);
    }
    for (const role of ["finance", "viewer"] as const) {
      const token = await signIn(role);
      expect((await call(`/v1/admin/dead-letters?date=${today()}`, authed(token))).status).toBe(403);
      expect((await call(`/v1/admin/dead-letters/replay?date=${today()}`, authed(token, { method: "POST" }))).status).toBe(403);
    }
  });
});
