import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { admin, authed, call, counters, createClient, d1RefusingBatchesOf, db, deadLetters, failingBucket, postJson, postWebhook, sign, unique, withClockAhead, withEnv } from "./helpers.ts";
import { phoneNumberReleases, phoneNumbers } from "../../schema/db.ts";
import { flush, parseCsv, report } from "./lake-fixtures.ts";
import { parseWebhook } from "../../workers/ingest/whatsapp.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";

const T0 = Date.UTC(2026, 10, 20, 12, 30, 15); // 2026-11-20T12:30:15Z
const sec = (ms: number) => Math.floor(ms / 1000);

describe("WhatsApp webhook verification handshake", () => {
  it("echoes the challenge when the verify token matches", async () => {
    const res = await call(`/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${env.WHATSAPP_VERIFY_TOKEN}&hub.challenge=1158201444`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("1158201444");
  });

  it("refuses a wrong token or mode with 403", async () => {
    for (const q of ["hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1", `hub.mode=unsubscribe&hub.verify_token=${env.WHATSAPP_VERIFY_TOKEN}&hub.challenge=1`, ""]) {
      const res = await call(`/v1/webhooks/whatsapp?${q}`);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("verification_failed");
    }
  });
});

describe("signed status notifications", () => {
  it("counts sent, delivered and read of a message per minute of occurrence", async () => {
    const { id, phones } = await createClient();
    const wamid = `wamid.${unique("m")}`;
    const res = await postWebhook(
      webhook([
        {
          phoneNumberId: phones[0]!,
          statuses: [
            statusObject({ id: wamid, status: "sent", timestamp: sec(T0), category: "marketing" }),
            statusObject({ id: wamid, status: "delivered", timestamp: sec(T0) + 2, category: "marketing" }),
            statusObject({ id: wamid, status: "read", timestamp: sec(T0) + 70 }),
          ],
        },
      ]),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 3, duplicates: 0, ignored: 0 });
    const { body } = await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z");
    const minute = Date.UTC(2026, 10, 20, 12, 30);
    expect(body.minutes).toEqual([
      { minute, accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 },
      { minute: minute + 60_000, accepted: 0, sent: 0, delivered: 0, read: 1, failed: 0 },
    ]);
  });

  it("refuses a missing, wrong or stale signature with 401 and counts nothing", async () => {
    const { id, phones } = await createClient();
    const payload = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("m")}`, status: "sent", timestamp: sec(T0) })] }]));
    const before = (await deadLetters()).length;
    for (const signature of [null, "sha256=00", await sign(payload, "another-secret"), await sign(`${payload} `), "md5=abc"]) {
      const res = await postWebhook(payload, signature);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
    }
    expect((await counters(id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")).body.minutes).toEqual([]);
    expect((await deadLetters()).length).toBe(before);
  });
});

describe("Meta's payload shapes", () => {
  it("records a failed status with its first error's code and title, and no error for a status of another kind", async () => {
    const { id, phones } = await createClient();
    const wamid = `wamid.${unique("f")}`;
    const res = await postWebhook(
      webhook([
        {
          phoneNumberId: phones[0]!,
          statuses: [
            statusObject({
              id: wamid,
              status: "failed",
              timestamp: sec(T0),
              errors: [
                { code: 131049, title: "This message was not delivered to maintain healthy ecosystem engagement.", message: "Meta's longer wording of the same" },
                { code: 131026, title: "Message undeliverable" },
              ],
            }),
            // Errors beside a status that is not a failure describe no failure of the message.
            statusObject({ id: `wamid.${unique("f")}`, status: "delivered", timestamp: sec(T0), errors: [{ code: 131000, title: "Something went wrong" }] }),
          ],
        },
      ]),
    );
    expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    const { body } = await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z");
    expect(body.minutes).toEqual([{ minute: Date.UTC(2026, 10, 20, 12, 30), accepted: 0, sent: 0, delivered: 1, read: 0, failed: 1 }]);
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    const column = (name: string) => header!.indexOf(name);
    expect(rows.map((r) => [r[column("status")], r[column("error_code")], r[column("error_title")]]).sort()).toEqual([
      ["delivered", "", ""],
      ["failed", "131049", "This message was not delivered to maintain healthy ecosystem engagement."],
    ]);
  });

  it("takes a timestamp sent as a number and an error code sent in digits, Meta's values in the other JSON type", async () => {
    const { id, phones } = await createClient();
    const failed = statusObject({ id: `wamid.${unique("f")}`, status: "failed", timestamp: sec(T0), errors: [{ code: 131026, title: "Message undeliverable" }] });
    const res = await postWebhook(
      webhook([
        {
          phoneNumberId: phones[0]!,
          statuses: [
            { ...failed, errors: [{ code: "131026", title: "Message undeliverable" }] },
            { ...statusObject({ id: `wamid.${unique("s")}`, status: "sent", timestamp: sec(T0) }), timestamp: sec(T0) },
          ],
        },
      ]),
    );
    expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    const column = (name: string) => header!.indexOf(name);
    expect(rows.map((r) => [r[column("status")], r[column("occurred_at")], r[column("error_code")]]).sort()).toEqual([
      ["failed", String(sec(T0) * 1000), "131026"],
      ["sent", String(sec(T0) * 1000), ""],
    ]);
  });

  it("keeps a status whose error code is wider than 32 bits in the dead letters, and the client's lake flush goes on", async () => {
    const { id, phones } = await createClient();
    const wide = statusObject({ id: `wamid.${unique("w")}`, status: "failed", timestamp: sec(T0), errors: [{ code: 2 ** 31, title: "Too wide" }] });
    const res = await postWebhook(
      webhook([{ phoneNumberId: phones[0]!, statuses: [wide, statusObject({ id: `wamid.${unique("s")}`, status: "sent", timestamp: sec(T0) })] }]),
    );
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 1 });
    const letter = (await deadLetters()).find((l) => l.body.input.includes(String(wide.id)))!;
    expect(letter.body.rejections.map((r) => r.at)).toEqual(["entry.0.changes.0.value.statuses.0.errors.0.code"]);
    expect((await flush(id)).status).toBe(200);
    expect((await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes).toEqual([
      { minute: Date.UTC(2026, 10, 20, 12, 30), accepted: 0, sent: 1, delivered: 0, read: 0, failed: 0 },
    ]);
  });

  it("routes a mixed batch of several phone numbers to their own clients", async () => {
    const a = await createClient({ phones: [unique("pn"), unique("pn")] });
    const b = await createClient();
    const m = () => `wamid.${unique("x")}`;
    const res = await postWebhook(
      webhook([
        { phoneNumberId: a.phones[0]!, statuses: [statusObject({ id: m(), status: "sent", timestamp: sec(T0) })] },
        { phoneNumberId: a.phones[1]!, statuses: [statusObject({ id: m(), status: "delivered", timestamp: sec(T0) })] },
        {
          phoneNumberId: b.phones[0]!,
          statuses: [
            statusObject({ id: m(), status: "sent", timestamp: sec(T0) }),
            statusObject({ id: m(), status: "read", timestamp: sec(T0) }),
          ],
        },
      ]),
    );
    expect(await res.json()).toEqual({ accepted: 4, duplicates: 0, ignored: 0 });
    const minute = Date.UTC(2026, 10, 20, 12, 30);
    expect((await counters(a.id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes).toEqual([
      { minute, accepted: 0, sent: 1, delivered: 1, read: 0, failed: 0 },
    ]);
    expect((await counters(b.id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes).toEqual([
      { minute, accepted: 0, sent: 1, delivered: 0, read: 1, failed: 0 },
    ]);
  });

  it("routes a status to the client that owned its number when it happened, so a retry after the number moved is a duplicate", async () => {
    const phone = unique("pn");
    const a = await createClient({ phones: [phone] });
    const b = await createClient({ phones: [] });
    const token = await admin();
    const before = webhook([{ phoneNumberId: phone, statuses: [statusObject({ id: `wamid.${unique("mv")}`, status: "delivered", timestamp: sec(T0) })] }]);
    expect(await (await postWebhook(before)).json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
    expect((await postJson(`/v1/admin/clients/${a.id}`, { phone_number_ids: [] }, token, "PATCH")).status).toBe(200);
    // Meta retries for 7 days: with the number released, and again once another client has it.
    expect(await (await postWebhook(before)).json()).toEqual({ accepted: 0, duplicates: 1, ignored: 0 });
    expect((await postJson(`/v1/admin/clients/${b.id}`, { phone_number_ids: [phone] }, token, "PATCH")).status).toBe(200);
    expect(await (await postWebhook(before)).json()).toEqual({ accepted: 0, duplicates: 1, ignored: 0 });
    // What happens after the move is the new owner's.
    const after = Date.now() + 2_000;
    const res = await postWebhook(webhook([{ phoneNumberId: phone, statuses: [statusObject({ id: `wamid.${unique("mv")}`, status: "sent", timestamp: sec(after) })] }]));
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
    const day = ["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"] as const;
    expect((await counters(a.id, ...day)).body.minutes).toEqual([expect.objectContaining({ delivered: 1 })]);
    expect((await counters(b.id, ...day)).body.minutes).toEqual([]);
    const minute = Math.floor(after / 60_000) * 60_000;
    expect((await counters(b.id, new Date(minute).toISOString(), new Date(minute + 60_000).toISOString())).body.minutes).toEqual([expect.objectContaining({ sent: 1 })]);
  });

  it("gives a status stamped at the instant its number was released to the next owner, one a second earlier to the one before", async () => {
    const phone = unique("pn");
    const earlier = await createClient({ phones: [] });
    const next = await createClient({ phones: [phone] });
    // A release as the admin API records one, on a whole second so that a status can be stamped at it.
    await db().insert(phoneNumberReleases).values({ phoneNumberId: phone, clientId: earlier.id, releasedAt: T0 });
    const statuses = [sec(T0) - 1, sec(T0)].map((timestamp) => statusObject({ id: `wamid.${unique("rel")}`, status: "sent", timestamp }));
    expect(await (await postWebhook(webhook([{ phoneNumberId: phone, statuses }]))).json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    for (const client of [earlier, next]) {
      expect((await counters(client.id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes.map((m) => m.sent)).toEqual([1]);
    }
  });

  it("gives a status to whoever owned its number when it happened, through two releases", async () => {
    const phone = unique("pn");
    const [first, second] = [await createClient({ phones: [] }), await createClient({ phones: [] })];
    const now = await createClient({ phones: [phone] });
    await db().insert(phoneNumberReleases).values([
      { phoneNumberId: phone, clientId: first.id, releasedAt: T0 },
      { phoneNumberId: phone, clientId: second.id, releasedAt: T0 + 60_000 },
    ]);
    const statuses = [sec(T0) - 1, sec(T0) + 30, sec(T0) + 60].map((timestamp) => statusObject({ id: `wamid.${unique("rel2")}`, status: "sent", timestamp }));
    expect(await (await postWebhook(webhook([{ phoneNumberId: phone, statuses }]))).json()).toEqual({ accepted: 3, duplicates: 0, ignored: 0 });
    for (const client of [first, second, now]) {
      expect((await counters(client.id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes.map((m) => m.sent)).toEqual([1]);
    }
  });

  it("routes a number another isolate's admin gave a client within seconds: this isolate remembers an unknown number 5 s at most", async () => {
    const { id } = await createClient({ phones: [] });
    const phone = unique("pn");
    const status = () => webhook([{ phoneNumberId: phone, statuses: [statusObject({ id: `wamid.${unique("c")}`, status: "sent", timestamp: sec(T0) })] }]);
    expect(await (await postWebhook(status())).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    // Written straight to D1, as another isolate's admin request does: nothing tells this isolate's cache.
    await db().insert(phoneNumbers).values({ phoneNumberId: phone, clientId: id });
    expect(await withClockAhead(5_001, async () => (await postWebhook(status())).json())).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
  });

  it("reloads the numbers in use before their 30 s run out, with a lookup it makes anyway; not the ones nobody used again", async () => {
    const [busy, idle, fresh] = await Promise.all([createClient(), createClient(), createClient()]);
    // Through app.fetch, with D1 as given: the isolate's directory cache is the one these calls fill.
    const post = async (phone: string, DB = env.DB) => {
      const body = JSON.stringify(webhook([{ phoneNumberId: phone, statuses: [statusObject({ id: `wamid.${unique("r")}`, status: "sent", timestamp: sec(T0) })] }]));
      return withEnv({ DB }, "/v1/webhooks/whatsapp", { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": await sign(body) }, body });
    };
    for (const phone of [busy.phones[0]!, busy.phones[0]!, idle.phones[0]!]) expect((await post(phone)).status).toBe(200);
    // 25 s on, a number not seen yet goes to D1, and the busy one, 5 s from expiring, goes along.
    expect((await withClockAhead(25_000, () => post(fresh.phones[0]!))).status).toBe(200);
    const noPhoneLookups = d1RefusingBatchesOf(/"phone_numbers"/);
    const [busyLater, idleLater] = await withClockAhead(45_000, () => Promise.all([post(busy.phones[0]!, noPhoneLookups), post(idle.phones[0]!, noPhoneLookups)]));
    expect(await busyLater.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
    expect(idleLater.status).toBe(503);
  });

  it("takes a free pricing type over a stale billable flag, lets billable decide for a type it does not know, and reads the type in any case", () => {
    const body = (pricing: Record<string, unknown>) =>
      webhook([{ phoneNumberId: "pn", statuses: [{ ...statusObject({ id: "wamid.f", status: "delivered", timestamp: sec(T0) }), pricing: { category: "service", ...pricing } }] }]);
    const billable = (pricing: Record<string, unknown>) => parseWebhook(body(pricing), T0 + 1_000).statuses[0]!.event.billable;
    expect(billable({ billable: true, type: "free_customer_service" })).toBe(false);
    expect(billable({ billable: true, type: "free_entry_point" })).toBe(false);
    expect(billable({ type: "regular" })).toBe(true);
    expect(billable({ billable: false, type: "regular" })).toBe(false);
    expect(billable({ billable: true })).toBe(true);
    expect(billable({})).toBe(null);
    expect(billable({ type: "REGULAR" })).toBe(true);
    expect(parseWebhook(body({ type: "FREE_ENTRY_POINT" }), T0 + 1_000).statuses[0]!.event.pricing_type).toBe("free_entry_point");
    expect(billable({ billable: true, type: "a_type_meta_adds" })).toBe(true);
    expect(billable({ type: "a_type_meta_adds" })).toBe(null);
  });

  it("counts a status whose pricing category or type this build does not list, and names each such value once in the log", async () => {
    const { id, phones } = await createClient();
    // Enum-like, as Meta's are (a value of another shape is logged by its length alone: log-privacy.test.ts).
    const letters = () => Math.random().toString(36).replace(/[^a-z]/g, "").slice(0, 8);
    const [category, type] = [`category_meta_adds_${letters()}`, `type_meta_adds_${letters()}`];
    const delivered = () => statusObject({ id: `wamid.${unique("u")}`, status: "delivered", timestamp: sec(T0), category, pricingType: type });
    const warn = vi.spyOn(console, "warn");
    for (let i = 0; i < 2; i++) {
      expect(await (await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [delivered(), delivered()] }]))).json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    }
    const named = warn.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).filter((l) => l.event === "webhook_unlisted_pricing");
    warn.mockRestore();
    expect(named).toEqual([
      expect.objectContaining({ level: "warn", field: "category", value: category, path: "/v1/webhooks/whatsapp" }),
      expect.objectContaining({ level: "warn", field: "pricing_type", value: type }),
    ]);
    const res = await call(`/v1/clients/${id}/categories?from=2026-11-20T12:00:00Z&to=2026-11-20T13:00:00Z`, authed(await admin()));
    expect(((await res.json()) as { categories: { category: string | null; delivered: number }[] }).categories).toEqual([expect.objectContaining({ category: null, delivered: 4 })]);
  });

  it("tolerates fields Meta adds and acknowledges inbound messages and other fields without counting them", async () => {
    const { id, phones } = await createClient();
    const payload = webhook([
      {
        phoneNumberId: phones[0]!,
        statuses: [statusObject({ id: `wamid.${unique("n")}`, status: "sent", timestamp: sec(T0), extra: { brand_new_field: { nested: true } } })],
        messages: [{ from: "16505551234", id: "wamid.IN", timestamp: String(sec(T0)), text: { body: "oi" }, type: "text" }],
      },
    ]) as { entry: { changes: unknown[] }[] };
    payload.entry[0]!.changes.push({ field: "message_template_status_update", value: { event: "APPROVED", message_template_id: 1 } });
    const res = await postWebhook(payload);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 2 });
    expect((await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes).toHaveLength(1);
  });
});

describe("recipients Meta identifies without a phone number", () => {
  it("takes the business-scoped user id when Meta withholds the number", async () => {
    const { id, phones } = await createClient();
    const username = statusObject({ id: `wamid.${unique("u")}`, status: "delivered", timestamp: sec(T0), extra: { recipient_user_id: "BR.1502576394655843" } });
    delete username.recipient_id;
    const both = statusObject({ id: `wamid.${unique("u")}`, status: "delivered", timestamp: sec(T0), recipient: "14155550123", extra: { recipient_user_id: "US.13491208655302741918" } });
    const res = await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [username, both] }]));
    expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    const column = (name: string) => header!.indexOf(name);
    expect(rows.map((r) => [r[column("recipient")], r[column("country")]]).sort()).toEqual([["14155550123", "US"], ["BR.1502576394655843", "BR"]]);
  });

  it("counts a group message per member (Meta bills each member's delivery at its country's rate), and the group's own statuses", async () => {
    const { id, phones } = await createClient();
    const wamid = `wamid.${unique("g")}`;
    const group = "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjMzOTQzMjAdOTY5MTgZD";
    const ofGroup = (status: string, member?: string, category?: string) =>
      statusObject({ id: wamid, status, timestamp: sec(T0), category, extra: { recipient_id: group, recipient_type: "group", ...(member ? { recipient_participant_id: member } : {}) } });
    // A member id we cannot read is not the group's own status: kept in the DLQ, not counted as the group's.
    // Nor is a failed of a member we cannot read (the group's own failed names no member).
    const unreadableMember = [ofGroup("delivered", "not-a-member-id", "marketing"), ofGroup("failed", "not-a-member-id")];
    const statuses = [ofGroup("sent", undefined, "marketing"), ofGroup("delivered", "919876543210", "marketing"), ofGroup("delivered", "5511987654321", "marketing"), ofGroup("read", "5511987654321"), ...unreadableMember];
    expect(await (await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses }]))).json()).toEqual({ accepted: 4, duplicates: 0, ignored: 2 });
    expect(await (await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses }]))).json()).toEqual({ accepted: 0, duplicates: 4, ignored: 2 });
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    const column = (name: string) => header!.indexOf(name);
    expect(rows.map((r) => [r[column("message_id")], r[column("event_id")], r[column("recipient")], r[column("country")]]).sort()).toEqual([
      [wamid, `${wamid}:sent`, group, ""],
      [`${wamid}:5511987654321`, `${wamid}:5511987654321:delivered`, "5511987654321", "BR"],
      [`${wamid}:5511987654321`, `${wamid}:5511987654321:read`, "5511987654321", "BR"],
      [`${wamid}:919876543210`, `${wamid}:919876543210:delivered`, "919876543210", "IN"],
    ]);
  });
});

describe("group members behind a username", () => {
  const group = { recipient_id: "Y2FwaV9ncm91cDoxNzA1NTU1MDEzOToxMjAzNjM0MDQ2OTQyMzM4MjAZD", recipient_type: "group" };
  const ledger = async (clientId: string) => (await counterOf(env, clientId).ledgerLinesByDay(["2026-11-20"]))["2026-11-20"];

  it("counts and bills each member named by BSUID on its own, at the member's country", async () => {
    const { id, phones } = await createClient();
    const wamid = `wamid.${unique("gu")}`;
    const member = (bsuid: string) => statusObject({ id: wamid, status: "delivered", timestamp: sec(T0), category: "marketing", extra: { ...group, recipient_participant_user_id: bsuid } });
    // Without their number Meta names a member only by BSUID; read as the group's own status, every
    // member's delivery was one event, all but the first dropped as its duplicates.
    const res = await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [member("BR.1502576394655843"), member("IN.13491208655302741918")] }]));
    expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    expect(await ledger(id)).toEqual([
      { category: "marketing", country: "BR", count: 1 },
      { category: "marketing", country: "IN", count: 1 },
    ]);
  });

  it("keeps a group's delivered or read that names no member we can read in the dead letters, never as the group's", async () => {
    const { id, phones } = await createClient();
    const wamid = `wamid.${unique("gn")}`;
    const statuses = ["delivered", "read"].map((status) => statusObject({ id: wamid, status, timestamp: sec(T0), category: "marketing", extra: group }));
    const payload = webhook([{ phoneNumberId: phones[0]!, statuses }]);
    expect(await (await postWebhook(payload)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 2 });
    const letter = (await deadLetters()).find((l) => l.body.input === JSON.stringify(payload));
    expect(letter?.body.rejections.map((r) => [r.at, r.code])).toEqual([
      ["entry.0.changes.0.value.statuses.0.recipient_id", "malformed"],
      ["entry.0.changes.0.value.statuses.1.recipient_id", "malformed"],
    ]);
    expect(await ledger(id)).toEqual([]);
  });
});

describe("what the parser does not read holds nothing back", () => {
  it("counts the other changes of an entry beside one it cannot read", async () => {
    const [a, b] = [await createClient(), await createClient()];
    const payload = webhook([a, b].map((c) => ({ phoneNumberId: c.phones[0]!, statuses: [statusObject({ id: `wamid.${unique("c")}`, status: "delivered", timestamp: sec(T0) })] }))) as {
      entry: { id: unknown; changes: unknown[] }[];
    };
    // A change without its `field`, and the entry's id (the account's, never read) as a number.
    payload.entry[0]!.changes.push({ value: { messaging_product: "whatsapp" } });
    payload.entry[0]!.id = 102290129340398;
    expect(await (await postWebhook(payload)).json()).toEqual({ accepted: 2, duplicates: 0, ignored: 1 });
    const letter = (await deadLetters()).find((l) => l.body.input === JSON.stringify(payload));
    expect(letter?.body.rejections.map((r) => r.at)).toEqual(["entry.0.changes.2.field"]);
    for (const c of [a, b]) expect((await counters(c.id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")).body.minutes.map((m) => m.delivered)).toEqual([1]);
  });

  it("reads a status's errors only when it failed, and cuts an error title to the canonical event's 1,024 characters", () => {
    const delivered = statusObject({ id: "wamid.d", status: "delivered", timestamp: sec(T0) });
    delivered.errors = [{ title: "said without a code" }];
    const failed = statusObject({ id: "wamid.f", status: "failed", timestamp: sec(T0), errors: [{ code: 131026, title: "x".repeat(5_000) }] });
    const codeless = statusObject({ id: "wamid.g", status: "failed", timestamp: sec(T0) });
    codeless.errors = [{ title: "no code" }];
    const parsed = parseWebhook(webhook([{ phoneNumberId: "pn", statuses: [delivered, failed, codeless] }]), T0 + 1_000);
    expect(parsed.statuses.map((s) => [s.event.status, s.event.error_code, s.event.error_title?.length ?? null])).toEqual([
      ["delivered", null, null],
      ["failed", 131026, 1024],
    ]);
    expect(parsed.rejected.map((r) => r.at)).toEqual(["entry.0.changes.0.value.statuses.2.errors.0.code"]);
  });

  it("keeps a status whose event id would pass 256 characters in the dead letters", () => {
    const member = statusObject({ id: `wamid.${"A".repeat(240)}`, status: "delivered", timestamp: sec(T0), extra: { ...{ recipient_id: "Y2FwaV9ncm91cDox", recipient_type: "group" }, recipient_participant_id: "5511987654321" } });
    const parsed = parseWebhook(webhook([{ phoneNumberId: "pn", statuses: [member] }]), T0 + 1_000);
    expect([parsed.statuses.length, parsed.rejected.map((r) => r.at)]).toEqual([0, ["entry.0.changes.0.value.statuses.0.id"]]);
  });

  it("counts a status whose event id is exactly 256 characters, the canonical event's bound", () => {
    const groupMember = (wamid: string) =>
      statusObject({ id: wamid, status: "delivered", timestamp: sec(T0), extra: { recipient_id: "Y2FwaV9ncm91cDox", recipient_type: "group", recipient_participant_id: "5511987654321" } });
    // `<wamid>:5511987654321:delivered`: the wamid's 232 characters and 24 more.
    const parsed = parseWebhook(webhook([{ phoneNumberId: "pn", statuses: [groupMember(`wamid.${"A".repeat(226)}`), groupMember(`wamid.${"A".repeat(227)}`)] }]), T0 + 1_000);
    expect(parsed.statuses.map((s) => s.event.event_id.length)).toEqual([256]);
    expect(parsed.rejected.map((r) => r.at)).toEqual(["entry.0.changes.0.value.statuses.1.id"]);
  });

  it("acknowledges a status Meta documents and we do not count without a letter, even one without a recipient", async () => {
    const { phones } = await createClient();
    const deleted = statusObject({ id: `wamid.${unique("z")}`, status: "deleted", timestamp: sec(T0) });
    delete deleted.recipient_id;
    const payload = webhook([{ phoneNumberId: phones[0]!, statuses: [deleted] }]);
    expect(await (await postWebhook(payload)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    expect((await deadLetters()).filter((l) => l.body.input === JSON.stringify(payload))).toEqual([]);
  });
});

describe("duplicates and late events", () => {
  it("counts an event once within a batch and across batches (Meta retries)", async () => {
    const { id, phones } = await createClient();
    const s = statusObject({ id: `wamid.${unique("d")}`, status: "delivered", timestamp: sec(T0) });
    const payload = webhook([{ phoneNumberId: phones[0]!, statuses: [s, s] }]);
    expect(await (await postWebhook(payload)).json()).toEqual({ accepted: 1, duplicates: 1, ignored: 0 });
    expect(await (await postWebhook(payload)).json()).toEqual({ accepted: 0, duplicates: 2, ignored: 0 });
    const { body } = await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z");
    expect(body.minutes[0]!.delivered).toBe(1);
  });

  it("counts a late event in the minute it occurred, days ago", async () => {
    const { id, phones } = await createClient();
    const lateAt = Date.UTC(2026, 10, 14, 23, 59, 59);
    await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("l")}`, status: "read", timestamp: sec(lateAt) })] }]));
    const { body } = await counters(id, "2026-11-14T00:00:00Z", "2026-11-15T00:00:00Z");
    expect(body.minutes).toEqual([{ minute: Date.UTC(2026, 10, 14, 23, 59), accepted: 0, sent: 0, delivered: 0, read: 1, failed: 0 }]);
  });
});

describe("rejections end up in dlq/ and lose nothing", () => {
  it("keeps statuses of an unknown phone_number_id in the DLQ and still answers 200", async () => {
    const known = await createClient();
    const unknownPhone = unique("unknown-pn");
    const before = (await deadLetters()).length;
    const payload = webhook([
      { phoneNumberId: unknownPhone, statuses: [statusObject({ id: `wamid.${unique("u")}`, status: "sent", timestamp: sec(T0) })] },
      { phoneNumberId: known.phones[0]!, statuses: [statusObject({ id: `wamid.${unique("u")}`, status: "sent", timestamp: sec(T0) })] },
    ]);
    const res = await postWebhook(payload);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 1 });
    const letters = await deadLetters();
    expect(letters.length).toBe(before + 1);
    const letter = letters.find((l) => l.body.input.includes(unknownPhone))!;
    expect(letter.key).toMatch(/^dlq\/date=\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\.json$/);
    expect(letter.body.source).toBe("whatsapp");
    expect(letter.body.rejections).toEqual([
      { at: "entry.0.changes.0.value.statuses.0", code: "unknown_phone_number", message: expect.stringContaining(unknownPhone) },
    ]);
    expect(JSON.parse(letter.body.input)).toEqual(payload);
  });

  it("answers 503 before counting anything when the DLQ cannot keep a rejection, so Meta's retry counts the batch once", async () => {
    const known = await createClient();
    const body = JSON.stringify(
      webhook([
        { phoneNumberId: unique("unknown-pn"), statuses: [statusObject({ id: `wamid.${unique("u")}`, status: "sent", timestamp: sec(T0) })] },
        { phoneNumberId: known.phones[0]!, statuses: [statusObject({ id: `wamid.${unique("u")}`, status: "sent", timestamp: sec(T0) })] },
      ]),
    );
    const init = { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": await sign(body) }, body };
    const failed = await withEnv({ LAKE: failingBucket }, "/v1/webhooks/whatsapp", init);
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe("dead_letter_unavailable");
    expect((await counters(known.id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")).body.minutes).toEqual([]);
    expect(await (await postWebhook(body)).json()).toEqual({ accepted: 1, duplicates: 0, ignored: 1 });
  });

  it("counts the readable statuses of a webhook and keeps the malformed one in the DLQ with its path", async () => {
    const { id, phones } = await createClient();
    const bad = statusObject({ id: `wamid.${unique("b")}`, status: "sent", timestamp: sec(T0) });
    delete bad.timestamp;
    const body = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("g")}`, status: "delivered", timestamp: sec(T0) }), bad] }]));
    const res = await postWebhook(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 1 });
    const letter = (await deadLetters()).find((l) => l.body.input === body)!;
    expect(letter.body.rejections).toEqual([{ at: "entry.0.changes.0.value.statuses.1.timestamp", code: "malformed", message: expect.any(String) }]);
    expect((await counters(id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")).body.minutes).toEqual([
      { minute: Date.UTC(2026, 10, 20, 12, 30), accepted: 0, sent: 0, delivered: 1, read: 0, failed: 0 },
    ]);
  });

  it("acknowledges a notification none of whose statuses is readable (Meta would retry a refusal for days), keeping the body and every path in the DLQ", async () => {
    const { id, phones } = await createClient();
    const bad = statusObject({ id: `wamid.${unique("b")}`, status: "sent", timestamp: sec(T0) });
    delete bad.timestamp;
    const noRecipient = statusObject({ id: `wamid.${unique("b")}`, status: "failed", timestamp: sec(T0), recipient: "12345" });
    const body = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [bad, noRecipient] }]));
    const res = await postWebhook(body);
    expect(await res.json()).toEqual({ accepted: 0, duplicates: 0, ignored: 2 });
    const letters = (await deadLetters()).filter((l) => l.body.input === body);
    expect(letters.map((l) => l.body.rejections.map((r) => [r.code, r.at]))).toEqual([
      [
        ["malformed", "entry.0.changes.0.value.statuses.0.timestamp"],
        ["malformed", "entry.0.changes.0.value.statuses.1.recipient_id"],
      ],
    ]);
    expect((await counters(id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z")).body.minutes).toEqual([]);
  });

  it("acknowledges an entry or a change value of another shape, keeping it in the DLQ, and counts the rest", async () => {
    const { id, phones } = await createClient();
    const payload = webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("v")}`, status: "sent", timestamp: sec(T0) })] }]) as {
      entry: { changes: unknown[] }[];
    };
    payload.entry[0]!.changes.push({ field: "messages", value: null });
    payload.entry.push({ messaging: [] } as never);
    const body = JSON.stringify(payload);
    expect(await (await postWebhook(body)).json()).toEqual({ accepted: 1, duplicates: 0, ignored: 2 });
    const letter = (await deadLetters()).find((l) => l.body.input === body)!;
    expect(letter.body.rejections.map((r) => r.at)).toEqual(["entry.0.changes.1.value", "entry.1.changes"]);
    expect((await counters(id, "2026-11-20T12:00:00Z", "2026-11-20T13:00:00Z")).body.minutes.map((m) => m.sent)).toEqual([1]);
  });

  it("acknowledges notifications of another object (Messenger, Instagram: the same app signs them) without reading or keeping them", async () => {
    const body = JSON.stringify({ object: "page", entry: [{ id: "1", time: 1, messaging: [{ sender: { id: "1" }, recipient: { id: "2" }, timestamp: 1, message: { mid: "m", text: "oi" } }] }] });
    expect(await (await postWebhook(body)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    expect((await deadLetters()).some((l) => l.body.input === body)).toBe(false);
  });

  it("keeps a status stamped more than an hour after it arrived (a wrong clock) in the DLQ, and takes one a minute ahead", async () => {
    const { id, phones } = await createClient();
    const now = Date.now();
    const ahead = statusObject({ id: `wamid.${unique("f")}`, status: "sent", timestamp: sec(now + 2 * 3_600_000) });
    const body = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [ahead] }]));
    expect(await (await postWebhook(body)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    expect((await deadLetters()).find((l) => l.body.input === body)!.body.rejections).toEqual([
      { at: "entry.0.changes.0.value.statuses.0.timestamp", code: "occurred_in_future", message: expect.stringContaining("more than an hour after") },
    ]);
    const skewed = statusObject({ id: `wamid.${unique("f")}`, status: "sent", timestamp: sec(now + 60_000) });
    expect(await (await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [skewed] }]))).json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
    const range = [new Date(now - 3_600_000).toISOString(), new Date(now + 4 * 3_600_000).toISOString()] as const;
    expect((await counters(id, ...range)).body.minutes.map((m) => m.sent)).toEqual([1]);
    // The hour itself is still taken; a second more is not.
    const bound = parseWebhook(
      webhook([{ phoneNumberId: phones[0]!, statuses: [3_600, 3_601].map((s) => statusObject({ id: `wamid.${unique("f")}`, status: "sent", timestamp: sec(T0) + s })) }]),
      T0,
    );
    expect([bound.statuses.length, bound.rejected.map((r) => [r.at, r.code])]).toEqual([1, [["entry.0.changes.0.value.statuses.1.timestamp", "occurred_in_future"]]]);
  });
  it("answers 400 for a body that is not JSON or not a notification envelope, keeping it", async () => {
    for (const body of ["{not json", "[]", JSON.stringify({ object: "whatsapp_business_account" }), JSON.stringify({ object: 7, entry: [] })]) {
      const res = await postWebhook(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("malformed_webhook");
      expect((await deadLetters()).some((l) => l.body.input === body)).toBe(true);
    }
  });

  it("acknowledges the statuses Meta documents that we do not count (played, deleted, warning); keeps an unknown kind in the DLQ", async () => {
    const { phones } = await createClient();
    const known = webhook([
      { phoneNumberId: phones[0]!, statuses: ["played", "deleted", "warning"].map((status) => statusObject({ id: `wamid.${unique("z")}`, status, timestamp: sec(T0) })) },
    ]);
    expect(await (await postWebhook(known)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 3 });
    expect((await deadLetters()).some((l) => l.body.input === JSON.stringify(known))).toBe(false);
    const unknown = webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("z")}`, status: "reacted", timestamp: sec(T0) })] }]);
    expect(await (await postWebhook(unknown)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
    const letter = (await deadLetters()).find((l) => l.body.input === JSON.stringify(unknown))!;
    expect(letter.body.rejections[0]!.code).toBe("unsupported_status");
  });

  it("reads a category Meta's older references spell with a hyphen (authentication-international), in any case", async () => {
    const { id, phones } = await createClient();
    const delivered = ["authentication-international", "Authentication_International"].map((category) =>
      statusObject({ id: `wamid.${unique("h")}`, status: "delivered", timestamp: sec(T0), recipient: "6281234567890", category }),
    );
    expect(await (await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: delivered }]))).json()).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    const res = await call(`/v1/clients/${id}/categories?from=2026-11-20T12:00:00Z&to=2026-11-20T13:00:00Z`, authed(await admin()));
    expect(((await res.json()) as { categories: { category: string | null; delivered: number }[] }).categories).toEqual([
      expect.objectContaining({ category: "authentication_international", delivered: 2 }),
    ]);
  });

  it("refuses bodies over 3 MB with 413", async () => {
    const big = JSON.stringify({ object: "whatsapp_business_account", entry: [], pad: "x".repeat(3 * 1024 * 1024) });
    const res = await postWebhook(big);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("payload_too_large");
  });
});
