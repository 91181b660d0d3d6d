import type { BridgeResult } from "../../schema/api.ts";
import { eventKey } from "../../durable-objects/client-counter-tables.ts";
import { parquetReadObjects } from "hyparquet";
import { describe, expect, it } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { decompressors } from "../../workers/lake/codec.ts";
import { counters, createClient, ingestKey, postEvents, postWebhook, sign, unique } from "./helpers.ts";
import { counterState, dlqKeys, expectClientError, lettersSince } from "./hostile-helpers.ts";
import { flush, report } from "./lake-fixtures.ts";

/**
 * The hand-written hostile corpus: each input is refused with a clear 4xx (or its bad records
 * listed), never a 5xx; what was read is kept verbatim in dlq/; the Durable Object is untouched by
 * what was refused. Inputs refused before they are read (401 unsigned, 413 over-size) are not kept:
 * the sender still holds them and nothing was acknowledged (docs/architecture.md).
 */

const AT = Date.UTC(2026, 10, 20, 12, 0, 0);
const sec = (ms: number) => Math.floor(ms / 1000);

function good(phone: string, id = `wamid.${unique("ok")}`) {
  return webhook([{ phoneNumberId: phone, statuses: [statusObject({ id, status: "sent", timestamp: sec(AT) })] }]);
}

function record(clientId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const id = `m-${unique("hc")}`;
  return { event_id: `${id}:sent`, message_id: id, client_id: clientId, status: "sent", occurred_at: AT, recipient: "5511987654321", ...over };
}

/** `depth` levels of `{"a": …}` around `inner`, built as text (JSON.stringify would recurse). */
function deep(depth: number, inner = "1"): string {
  return `${'{"a":'.repeat(depth)}${inner}${"}".repeat(depth)}`;
}

/** A webhook body with `statuses[0]` replaced by `status`, as text. */
function withStatus(phone: string, status: string): string {
  return JSON.stringify(good(phone)).replace(/"statuses":\[\{.*?\}\]/, `"statuses":[${status}]`);
}

let corpus = 0;

/** Posts a signed webhook that must be refused with 400: kept verbatim, nothing counted. */
async function refusedWebhook(clientId: string, body: string): Promise<void> {
  corpus += 1;
  const before = await counterState(clientId);
  const letters = await dlqKeys();
  const res = await postWebhook(body);
  expect((await expectClientError(res, 400)).code, body.slice(0, 200)).toBe("malformed_webhook");
  expect((await lettersSince(letters)).map((l) => l.body.input)).toEqual([body]);
  expect(await counterState(clientId)).toEqual(before);
}

/** Posts a signed notification with nothing readable in it: acknowledged (Meta would retry a refusal for days), kept verbatim, nothing counted. */
async function keptWebhook(clientId: string, body: string): Promise<void> {
  corpus += 1;
  const before = await counterState(clientId);
  const letters = await dlqKeys();
  const res = await postWebhook(body);
  expect([res.status, body.slice(0, 200)]).toEqual([200, body.slice(0, 200)]);
  expect(((await res.json()) as { accepted: number }).accepted).toBe(0);
  expect((await lettersSince(letters)).map((l) => l.body.input)).toEqual([body]);
  expect(await counterState(clientId)).toEqual(before);
}

describe("hostile webhooks", () => {
  it("refuses malformed JSON, wrong types and out-of-range numbers with 400, keeping each body", async () => {
    const { id, phones } = await createClient();
    const phone = phones[0]!;
    const ok = JSON.stringify(good(phone));
    const bodies = [
      "",
      "{",
      ok.slice(0, -1),
      `${ok.slice(0, -1)},}`,
      "NaN",
      "null",
      "true",
      "1e400",
      '"whatsapp_business_account"',
      "{'object':'whatsapp_business_account'}",
      '{"object":"whatsapp_business_account","entry":"x"}',
      '{"object":7,"entry":[]}',
    ];
    for (const body of bodies) await refusedWebhook(id, body);
  });

  it("acknowledges a notification envelope whose entries or statuses are hostile, keeping each body and counting nothing", async () => {
    const { id, phones } = await createClient();
    const phone = phones[0]!;
    const ok = JSON.stringify(good(phone));
    const bodies = [
      '{"object":"whatsapp_business_account","entry":[{"changes":{}}]}',
      ok.replace(`"phone_number_id":"${phone}"`, '"phone_number_id":12345'),
      ok.replace(`"phone_number_id":"${phone}"`, `"phone_number_id":"${"9".repeat(65)}"`),
      withStatus(phone, `{"id":"w1","status":"sent","timestamp":${sec(AT)}.5,"recipient_id":"5511987654321"}`),
      withStatus(phone, `{"id":"w1","status":"sent","timestamp":"999999999999","recipient_id":"5511987654321"}`),
      withStatus(phone, `{"id":"w1","status":"sent","timestamp":"1e10","recipient_id":"5511987654321"}`),
      withStatus(phone, `{"id":"w1","status":"sent","timestamp":"-5","recipient_id":"5511987654321"}`),
      withStatus(phone, `{"id":"w1","status":"failed","timestamp":"${sec(AT)}","recipient_id":"5511987654321","errors":[{"code":1e308}]}`),
      withStatus(phone, `{"id":"w1","status":"sent","timestamp":"${sec(AT)}","recipient_id":"not-a-number"}`),
      withStatus(phone, `{"id":${"9".repeat(400)},"status":"sent","timestamp":"${sec(AT)}","recipient_id":"5511987654321"}`),
      withStatus(phone, `{"id":"${"x".repeat(257)}","status":"sent","timestamp":"${sec(AT)}","recipient_id":"5511987654321"}`),
      withStatus(phone, `{"id":"w1","status":["sent"],"timestamp":"${sec(AT)}","recipient_id":"5511987654321"}`),
    ];
    for (const body of bodies) await keptWebhook(id, body);
  });

  it("survives deeply nested JSON: 400 when it breaks the shape, tolerated when it is an extra field", async () => {
    const { id, phones } = await createClient();
    await refusedWebhook(id, deep(100_000));
    const extra = withStatus(phones[0]!, `{"id":"wamid.${unique("deep")}","status":"sent","timestamp":"${sec(AT)}","recipient_id":"5511987654321","x":${deep(50_000)}}`);
    corpus += 1;
    const res = await postWebhook(extra);
    expect(await res.json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
  });

  it("refuses bodies over 3 MB with 413 before reading them: nothing counted", async () => {
    const { id, phones } = await createClient();
    const before = await counterState(id);
    const huge = JSON.stringify(good(phones[0]!)).replace('"entry"', `"pad":"${"x".repeat(3 * 1024 * 1024)}","entry"`);
    corpus += 1;
    expect((await expectClientError(await postWebhook(huge), 413)).code).toBe("payload_too_large");
    expect(await counterState(id)).toEqual(before);
  });

  it("refuses forged signatures with 401 and counts nothing", async () => {
    const { id, phones } = await createClient();
    const body = JSON.stringify(good(phones[0]!));
    const other = JSON.stringify(good(phones[0]!));
    const right = await sign(body);
    const forged = [
      null,
      "",
      "sha256=",
      right.slice(0, -2),
      `${right}00`,
      right.replace("sha256=", "sha1="),
      right.replace("sha256=", "SHA256="),
      `sha256=${"0".repeat(64)}`,
      await sign(body, "not-the-app-secret"),
      await sign(other),
      `${right},${right}`,
    ];
    const before = await counterState(id);
    for (const sig of forged) {
      corpus += 1;
      expect((await expectClientError(await postWebhook(body, sig), 401)).code).toBe("invalid_signature");
    }
    expect(await counterState(id)).toEqual(before);
  });

  it("counts a replayed signed body once", async () => {
    const { id, phones } = await createClient();
    const body = JSON.stringify(good(phones[0]!));
    const sig = await sign(body);
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await (await postWebhook(body, sig)).json());
    corpus += 3;
    expect(results).toEqual([
      { accepted: 1, duplicates: 0, ignored: 0 },
      { accepted: 0, duplicates: 1, ignored: 0 },
      { accepted: 0, duplicates: 1, ignored: 0 },
    ]);
    expect((await counterState(id)).total).toBe(1);
  });

  it("keeps unknown statuses in dlq/ and tolerates unknown pricing enums as unknown", async () => {
    const { id, phones } = await createClient();
    const phone = phones[0]!;
    const before = await counterState(id);
    // Only the exact names Meta documents are let go unkept.
    for (const status of ["reacted", "SENT", "sent ", "PLAYED"]) {
      const body = JSON.stringify(webhook([{ phoneNumberId: phone, statuses: [statusObject({ id: `wamid.${unique("u")}`, status, timestamp: sec(AT) })] }]));
      const letters = await dlqKeys();
      corpus += 1;
      expect(await (await postWebhook(body)).json()).toEqual({ accepted: 0, duplicates: 0, ignored: 1 });
      const kept = await lettersSince(letters);
      expect(kept.map((l) => [l.body.input, l.body.rejections[0]!.code])).toEqual([[body, "unsupported_status"]]);
    }
    expect(await counterState(id)).toEqual(before);
    const odd = webhook([{ phoneNumberId: phone, statuses: [statusObject({ id: `wamid.${unique("p")}`, status: "sent", timestamp: sec(AT), category: "premium", pricingType: "surge" })] }]);
    corpus += 1;
    expect(await (await postWebhook(odd)).json()).toEqual({ accepted: 1, duplicates: 0, ignored: 0 });
  });
});

describe("hostile bridge batches", () => {
  it("lists every bad record by index, keeps them in dlq/, and stores only the good ones", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const bad = [
      record(id, { occurred_at: 1e308 }),
      record(id, { occurred_at: 2 ** 53 + 1 }),
      record(id, { occurred_at: -1 }),
      record(id, { occurred_at: "2026-11-20" }),
      record(id, { occurred_at: "2026-11-20T25:00:00" }),
      record(id, { occurred_at: "20 Nov 2026 12:00" }),
      record(id, { status: "deleted" }),
      record(id, { status: null }),
      record(id, { category: "premium" }),
      record(id, { pricing_type: "surge" }),
      record(id, { billable: "true" }),
      record(id, { error_code: 1.5 }),
      record(id, { recipient: "+55 11 98765-4321" }),
      record(id, { recipient: 5511987654321 }),
      record(id, { country: "br" }),
      record(id, { client_id: "../../lake" }),
      record(id, { client_id: `${id}\u0000` }),
      record(id, { client_id: "x".repeat(65) }),
      record(id, { event_id: "" }),
      record(id, { event_id: "x".repeat(257) }),
      record(id, { event_id: { $gt: "" } }),
      record(id, { template: "t".repeat(513) }),
      record(id, { a: JSON.parse(deep(2_000)) as unknown, status: 7 }),
      [record(id)],
      "not an object",
      42,
      null,
    ];
    const goodOnes = [record(id), record(id, { extra_field: { nested: [1, 2, 3] } })];
    const batch = [goodOnes[0], ...bad, goodOnes[1]];
    corpus += batch.length;
    const letters = await dlqKeys();
    const res = await postEvents(batch, key);
    expect(res.status).toBe(200);
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(2);
    // Each refused as the event it is not, before any client is looked up (a path in client_id included).
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual(bad.map((_, i) => [i + 1, "invalid_event"]));
    for (const r of out.rejected) expect(r.message.length).toBeGreaterThan(0);
    const kept = await lettersSince(letters);
    expect(kept).toHaveLength(1);
    const records = JSON.parse(kept[0]!.body.input) as { index: number; record: string }[];
    expect(records.map((r) => JSON.parse(r.record) as unknown)).toEqual(bad);
    const state = await counterState(id);
    expect(state.seen).toEqual(new Set(goodOnes.map((g) => eventKey(g.message_id as string, g.event_id as string))));
    expect(state.total).toBe(2);
  });

  it("survives records nested 100,000 levels deep in JSON and NDJSON: unknown fields stripped, bad shapes rejected", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const rec = JSON.stringify(record(id)).replace(/^\{/, `{"x":${deep(100_000)},`);
    const answers = [];
    for (const [body, type] of [[`[${rec}]`, "application/json"], [rec, "application/x-ndjson"], [deep(100_000), "application/json"]] as const) {
      corpus += 1;
      const res = await postEvents(body, key, type);
      const out = (await res.json()) as { accepted: number; duplicates: number; rejected: { code: string }[] };
      answers.push([res.status, out.accepted, out.duplicates, out.rejected.map((r) => r.code)]);
    }
    expect(answers).toEqual([
      [200, 1, 0, []],
      [200, 0, 1, []],
      [200, 0, 0, ["invalid_event"]],
    ]);
    expect((await counterState(id)).total).toBe(1);
  });

  it("refuses malformed bodies with 400 (kept), wrong media types with 415, and over-size batches with 413", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const before = await counterState(id);
    for (const body of ["", "{", "[1,", "NaN", "'x'", `[${JSON.stringify(record(id))},]`]) {
      const letters = await dlqKeys();
      corpus += 1;
      expect((await expectClientError(await postEvents(body, key), 400)).code).toBe("malformed_batch");
      expect((await lettersSince(letters)).map((l) => l.body.input)).toEqual([body]);
    }
    corpus += 2;
    expect((await expectClientError(await postEvents("[]", key, "application/x-www-form-urlencoded"), 415)).code).toBe("unsupported_media_type");
    const huge = JSON.stringify([{ ...record(id), pad: "x".repeat(5 * 1024 * 1024) }]);
    expect((await expectClientError(await postEvents(huge, key), 413)).code).toBe("payload_too_large");
    expect(await counterState(id)).toEqual(before);
  });

  it("counts emoji, RTL and SQL-looking identifiers once and keeps them verbatim in the lake; refuses NUL and lone surrogates", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const before = await counterState(id);
    const refused = [record(id, { event_id: "a\u0000b" }), record(id, { message_id: "\ud800x" }), record(id, { event_id: "x\udfff" })];
    corpus += refused.length;
    const out = (await (await postEvents(refused, key)).json()) as { accepted: number; rejected: { code: string }[] };
    expect(out.accepted).toBe(0);
    expect(out.rejected.map((r) => r.code)).toEqual(["invalid_event", "invalid_event", "invalid_event"]);
    expect(await counterState(id)).toEqual(before);

    const strange = ["😀👍🏽🇧🇷", "\u202Eevil\u202C", "مرحبا", "'; DROP TABLE ledger; --", '" OR 1=1 --', "seen_20261120", "%00%27", "\\u0000", " "];
    const events = strange.map((s, i) =>
      record(id, { event_id: `${s}:${i}`, message_id: `${s}#${i}`, template: s, error_title: s, phone_number_id: s.slice(0, 64), occurred_at: AT + i * 1000 }),
    );
    corpus += events.length;
    expect(await (await postEvents(events, key)).json()).toEqual({ accepted: events.length, duplicates: 0, rejected: [] });
    expect(await (await postEvents([...events].reverse(), key)).json()).toEqual({ accepted: 0, duplicates: events.length, rejected: [] });
    const { body } = await counters(id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z");
    expect(body.minutes.reduce((n, m) => n + m.sent!, 0)).toBe(events.length);

    expect((await flush(id)).status).toBe(200);
    const file = await (await report(id, { from: "2026-11-20T00:00:00Z", to: "2026-11-21T00:00:00Z", format: "parquet" })).arrayBuffer();
    const rows = await parquetReadObjects({ file, columns: ["event_id", "message_id", "template", "error_title"], compressors: decompressors });
    expect(rows.map((r) => [r.event_id, r.message_id, r.template, r.error_title])).toEqual(
      events.map((e) => [e.event_id, e.message_id, e.template, e.error_title]),
    );
    console.log(`hand-written corpus: ${corpus} inputs`);
  });
});
