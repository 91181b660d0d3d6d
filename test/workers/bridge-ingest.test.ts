import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import type { BridgeResult } from "../../schema/api.ts";
import { admin, authed, call, counters, createClient, deadLetters, ingestKey, postEvents, unique, withMethods } from "./helpers.ts";
import { flush, parseCsv, report } from "./lake-fixtures.ts";
import { ingestKeyFrom } from "../../workers/auth/api-keys.ts";

const AT = Date.UTC(2026, 10, 20, 9, 15, 30);

function event(clientId: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  const messageId = `m-${unique("e")}`;
  return {
    event_id: `${messageId}:accepted`,
    message_id: messageId,
    client_id: clientId,
    status: "accepted",
    occurred_at: AT,
    recipient: "5511987654321",
    category: "marketing",
    template: "black_friday",
    ...over,
  };
}

const minuteOf = (ms: number) => ms - (ms % 60_000);
async function acceptedAt(clientId: string): Promise<number> {
  const { body } = await counters(clientId, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z");
  return body.minutes.reduce((s, m) => s + m.accepted!, 0);
}

describe("bridge batch formats", () => {
  it("accepts a JSON array", async () => {
    const { id } = await createClient();
    const res = await postEvents([event(id), event(id)], await ingestKey());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    expect(await acceptedAt(id)).toBe(2);
  });

  it("accepts {events: [...]}", async () => {
    const { id } = await createClient();
    expect(await (await postEvents({ events: [event(id)] }, await ingestKey())).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it("accepts one event object, an array among its own fields included", async () => {
    const { id } = await createClient();
    expect(await (await postEvents(event(id, { tags: ["promo", "nov"] }), await ingestKey())).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it("accepts one event object whose own field is an array named events, as the event and not as a batch", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const letters = (await deadLetters()).length;
    for (const events of [[], ["queued", "sent"]]) {
      expect(await (await postEvents(event(id, { events }), key)).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    }
    expect(await acceptedAt(id)).toBe(2);
    expect((await deadLetters()).length).toBe(letters);
  });

  it("unwraps Kafka Connect HTTP-sink records whose value is an object or a JSON string, not an event with a value field of its own", async () => {
    const { id } = await createClient();
    const records = [
      { topic: "wa-events", partition: 0, offset: 41, key: id, value: event(id) },
      { topic: "wa-events", partition: 0, offset: 42, key: id, value: JSON.stringify(event(id)) },
      event(id, { value: 12.5 }),
    ];
    expect(await (await postEvents(records, await ingestKey())).json()).toEqual({ accepted: 3, duplicates: 0, rejected: [] });
  });

  it("takes a lone sink record with a list among its own fields (headers) as the record, and an event with schema and payload fields of its own as the event", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const sinkRecord = { topic: "wa-events", partition: 0, offset: 43, key: id, headers: [{ key: "trace", value: "x" }], value: event(id) };
    expect(await (await postEvents(sinkRecord, key)).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect(await (await postEvents([event(id, { schema: "wa.v1", payload: { note: "producer's own" } })], key)).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it("answers an empty batch (a producer's flush with nothing in it) 200 with nothing stored, in every form", async () => {
    const key = await ingestKey();
    for (const [body, type] of [["[]", "application/json"], ['{"events": []}', "application/json"], ["", "application/x-ndjson"], ["\n\n", "application/x-ndjson"]] as const) {
      const res = await postEvents(body, key, type);
      expect([res.status, await res.json()]).toEqual([200, { accepted: 0, duplicates: 0, rejected: [] }]);
    }
  });

  it("reads Kafka Connect's JsonConverter output with schemas ({schema, payload}), bare or as a sink record's value", async () => {
    const { id } = await createClient();
    const schema = { type: "struct", fields: [], optional: false };
    const records = [{ schema, payload: event(id) }, { key: id, value: { schema, payload: event(id) } }, { key: id, value: JSON.stringify({ schema, payload: event(id) }) }];
    expect(await (await postEvents(records, await ingestKey())).json()).toEqual({ accepted: 3, duplicates: 0, rejected: [] });
  });

  it("answers 400 for another sender's envelope ({records: [...]}, {data: [...]}) or an events field that is no array, instead of reading it as one bad record", async () => {
    const { id } = await createClient();
    for (const body of [{ records: [event(id), event(id)] }, { data: [event(id)] }, { events: event(id) }, { events: null }]) {
      const res = await postEvents(body, await ingestKey());
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("malformed_batch");
      expect(error.message).toContain(`"${Object.keys(body)[0]}"`);
    }
    expect(await acceptedAt(id)).toBe(0);
  });

  it("answers 400 for events sent in the wrong form (an array or {events} as NDJSON, arrays in an array), and stores none of them", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const batch = [event(id), event(id)];
    for (const [body, type, shape] of [
      [JSON.stringify(batch), "application/x-ndjson", "an array"],
      [`${JSON.stringify({ events: batch })}\n${JSON.stringify(batch)}`, "application/x-ndjson", 'an object holding an array in "events"'],
      [JSON.stringify([batch, [event(id)]]), "application/json", "an array"],
    ] as const) {
      const res = await postEvents(body, key, type);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect([res.status, error.code, error.message]).toEqual([400, "malformed_batch", expect.stringContaining(shape)]);
      expect((await deadLetters()).some((l) => l.body.input === body && l.body.rejections[0]?.code === "malformed")).toBe(true);
    }
    expect(await acceptedAt(id)).toBe(0);
    // Next to good records such a record is rejected alone (hostile-corpus.test.ts); an event that
    // happens to carry an array named events is one event.
    expect(await (await postEvents([{ ...event(id), events: ["x"] }], key)).json()).toMatchObject({ accepted: 1 });
  });

  it("accepts NDJSON, rejecting only the line that is not JSON", async () => {
    const { id } = await createClient();
    const body = [JSON.stringify(event(id)), "{oops", "", JSON.stringify(event(id))].join("\n");
    const res = await postEvents(body, await ingestKey(), "application/x-ndjson");
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(2);
    expect(out.rejected).toEqual([{ index: 1, code: "invalid_json", message: expect.any(String) }]);
  });

  it("says where a line's JSON breaks without quoting it: the reason lands in the dead letters' list, the input does not", async () => {
    const { id } = await createClient();
    const lines = ['{"recipient":"5511987654321","x":NaN}', '{"recipient":', '{"recipient":"5511987654321" "x":1}'];
    const res = await postEvents([JSON.stringify(event(id)), ...lines].join("\n"), await ingestKey(), "application/x-ndjson");
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(1);
    expect(out.rejected.map((r) => r.message)).toEqual([
      expect.stringMatching(/^not valid JSON/),
      "not valid JSON: it ends too early",
      expect.stringMatching(/^not valid JSON at position \d+$/),
    ]);
    for (const r of out.rejected) expect(r.message).not.toContain("4321");
    const whole = await postEvents('[{"recipient":"5511987654321","x":NaN}]', await ingestKey());
    expect(((await whole.json()) as { error: { message: string } }).error.message).not.toContain("4321");
  });

  it("takes occurred_at as an ISO-8601 string and derives the country from the number", async () => {
    const { id } = await createClient();
    const res = await postEvents([event(id, { occurred_at: "2026-11-20T06:15:30-03:00", recipient: "+5215512345678" })], await ingestKey());
    expect((await res.json()) as object).toMatchObject({ accepted: 1 });
    const { body } = await counters(id, "2026-11-20T09:00:00Z", "2026-11-20T10:00:00Z");
    expect(body.minutes).toEqual([{ minute: minuteOf(AT), accepted: 1, sent: 0, delivered: 0, read: 0, failed: 0 }]);
  });

  it("takes a business-scoped user id as the recipient, its country as the market; refuses other ids", async () => {
    const { id } = await createClient();
    const res = await postEvents(
      [
        event(id, { recipient: "BR.1502576394655843" }),
        event(id, { recipient: "US.ENT.11815799212886844830" }),
        event(id, { recipient: "+5215512345678" }),
        event(id, { recipient: "br.15025" }),
        // E.164 allows 15 digits at most.
        event(id, { recipient: "5511987654321012" }),
      ],
      await ingestKey(),
    );
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(3);
    expect(out.rejected).toEqual([3, 4].map((index) => expect.objectContaining({ index, message: expect.stringMatching(/recipient.*business-scoped user id/) })));
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    const column = (name: string) => header!.indexOf(name);
    expect(rows.map((r) => [r[column("recipient")], r[column("country")]]).sort()).toEqual([["5215512345678", "MX"], ["BR.1502576394655843", "BR"], ["US.ENT.11815799212886844830", "US"]]);
  });

  it("derives billable from the pricing type and the country from the recipient only where the record leaves them out", async () => {
    const { id } = await createClient();
    const records = [
      event(id, { pricing_type: "free_customer_service" }),
      event(id, { pricing_type: "regular", country: "PT" }),
      event(id, { pricing_type: "regular", billable: false }),
    ];
    expect(await (await postEvents(records, await ingestKey())).json()).toEqual({ accepted: 3, duplicates: 0, rejected: [] });
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    const column = (name: string) => header!.indexOf(name);
    const byId = new Map(rows.map((r) => [r[column("event_id")], [r[column("billable")], r[column("country")]]]));
    expect(records.map((r) => byId.get(r.event_id as string))).toEqual([
      ["false", "BR"],
      ["true", "PT"],
      ["false", "BR"],
    ]);
  });

  it("refuses a record stamped more than an hour after the batch arrived, and takes one a minute ahead", async () => {
    const { id } = await createClient();
    const now = Date.now();
    const res = await postEvents([event(id, { occurred_at: now + 2 * 3_600_000 }), event(id, { occurred_at: now + 60_000 })], await ingestKey());
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(1);
    expect(out.rejected).toEqual([{ index: 0, code: "occurred_in_future", message: expect.stringContaining("more than an hour after") }]);
  });

  it("reads an ISO-8601 occurred_at with or without a zone (UTC), and refuses a date alone or a number in a string, saying what it takes", async () => {
    const { id } = await createClient();
    const forms = ["2026-11-20T09:15:30Z", "2026-11-20T06:15:30-03:00", "2026-11-20T09:15:30", "2026-11-20 09:15:30.000"];
    const res = await postEvents(
      [...forms.map((occurred_at, i) => event(id, { event_id: `${id}-iso-${i}`, message_id: `${id}-iso-${i}`, occurred_at })), event(id, { occurred_at: "2026-11-20" }), event(id, { occurred_at: "1795684530000" })],
      await ingestKey(),
    );
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(forms.length);
    expect(out.rejected.map((r) => r.index)).toEqual([4, 5]);
    expect(out.rejected[0]!.message).toMatch(/occurred_at.*ISO-8601 date-time/);
    const report = await counters(id, "2026-11-20T09:15:00Z", "2026-11-20T09:16:00Z");
    expect(report.body.minutes).toEqual([expect.objectContaining({ minute: Date.UTC(2026, 10, 20, 9, 15), accepted: forms.length })]);
  });
});

describe("counters ranges", () => {
  it("count every minute that overlaps [from, to), the one from falls in included, whichever ISO-8601 form the range takes", async () => {
    const { id } = await createClient();
    await postEvents([event(id)], await ingestKey());
    const one = [{ minute: minuteOf(AT), accepted: 1, sent: 0, delivered: 0, read: 0, failed: 0 }];
    const at = new Date(AT).toISOString();
    for (const [from, to] of [
      [at, "2026-11-20T09:16:00Z"],
      ["2026-11-20T09:15:59Z", "2026-11-20T09:15:59.001Z"],
      ["2026-11-20", "2026-11-21"],
      ["2026-11-20T09:15", "2026-11-20T09:16"],
      ["2026-11-20T06:15:00-0300", "2026-11-20T06:16:00-03:00"],
    ]) {
      const { status, body } = await counters(id, from!, to!);
      expect([from, status, body.minutes]).toEqual([from, 200, one]);
    }
    expect((await counters(id, "2026-11-20T09:16:00Z", "2026-11-20T10:00:00Z")).body.minutes).toEqual([]);
    expect((await counters(id, "2026-11-20T08:00:00Z", "2026-11-20T09:15:00Z")).body.minutes).toEqual([]);
    const plus = await call(`/v1/clients/${id}/counters?from=2026-11-20T12:15:00+03:00&to=2026-11-20T12:16:00+03:00`, authed(await admin()));
    expect(((await plus.json()) as { minutes: unknown }).minutes).toEqual(one);
    const bad = await counters(id, "2026-02-30", "2026-03-01");
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("expected an ISO-8601 date or date-time");
  });
});

describe("per-record validation", () => {
  it("stores the valid records and lists the invalid ones by index, keeping them in the DLQ", async () => {
    const { id } = await createClient();
    const missingRecipient = event(id);
    delete missingRecipient.recipient;
    const batch = [event(id), missingRecipient, event(id, { status: "bounced" }), event("no-such-client"), event(id, { occurred_at: "yesterday" })];
    const res = await postEvents(batch, await ingestKey());
    expect(res.status).toBe(200);
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(1);
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual([
      [1, "invalid_event"],
      [2, "invalid_event"],
      [3, "unknown_client"],
      [4, "invalid_event"],
    ]);
    expect(out.rejected[0]!.message).toContain("recipient");
    const letter = (await deadLetters()).find((l) => l.body.input.includes(String(missingRecipient.event_id)))!;
    expect(letter.body.source).toBe("kafka");
    const kept = JSON.parse(letter.body.input) as { index: number; record: string }[];
    expect(kept.map((k) => k.index)).toEqual([1, 2, 3, 4]);
    expect(JSON.parse(kept[0]!.record)).toEqual(missingRecipient);
    expect(await acceptedAt(id)).toBe(1);
  });

  it("takes an error code of 32 bits and refuses a wider one, so no record can stop its client's lake flush", async () => {
    const { id } = await createClient();
    const codes = [2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 9_999_999_999];
    const res = await postEvents(codes.map((error_code) => event(id, { status: "failed", error_code })), await ingestKey());
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(2);
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual([
      [2, "invalid_event"],
      [3, "invalid_event"],
      [4, "invalid_event"],
    ]);
    expect(out.rejected[0]!.message).toContain("error_code");
    expect((await flush(id)).status).toBe(200);
    const [header, ...rows] = parseCsv(await (await report(id, { from: "2026-11-20", to: "2026-11-21", format: "csv" })).text());
    expect(rows.map((r) => Number(r[header!.indexOf("error_code")])).sort((a, b) => a - b)).toEqual([-(2 ** 31), 2 ** 31 - 1]);
  });

  it("rejects identifiers that are not well-formed Unicode or hold control characters", async () => {
    const { id } = await createClient();
    const res = await postEvents([event(id, { event_id: "a\ud800b" }), event(id, { message_id: "m\u0000" }), event(id)], await ingestKey());
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(1);
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual([
      [0, "invalid_event"],
      [1, "invalid_event"],
    ]);
  });

  it("rejects a country that is two letters but no country's code, and takes a territory a number resolves to", async () => {
    const { id } = await createClient();
    const res = await postEvents([event(id, { country: "UK" }), event(id, { country: "GB" }), event(id, { country: "XK" })], await ingestKey());
    const out = (await res.json()) as BridgeResult;
    expect(out.accepted).toBe(2);
    expect(out.rejected.map((r) => [r.index, r.code])).toEqual([[0, "invalid_event"]]);
    expect(out.rejected[0]!.message).toContain("ISO 3166-1 alpha-2");
  });

  it("deduplicates by event_id within and across batches", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const e = event(id);
    expect(await (await postEvents([e, e], key)).json()).toEqual({ accepted: 1, duplicates: 1, rejected: [] });
    expect(await (await postEvents([e, event(id)], key)).json()).toEqual({ accepted: 1, duplicates: 1, rejected: [] });
    expect(await acceptedAt(id)).toBe(2);
  });

  it("answers 400 for a body that is not JSON, keeping it in the DLQ", async () => {
    const body = `[{"event_id": "${unique("broken")}"`;
    const res = await postEvents(body, await ingestKey());
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("malformed_batch");
    expect((await deadLetters()).some((l) => l.body.input === body)).toBe(true);
  });

  it("answers 400 for a body that is not UTF-8, so ids that differ only in a bad byte are not taken for one event", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const eventId = unique("utf8");
    for (const bad of [0xff, 0xfe]) {
      const [head, tail] = JSON.stringify([{ ...event(id), event_id: `${eventId}#` }]).split("#");
      const bytes = new Uint8Array([...new TextEncoder().encode(head), bad, ...new TextEncoder().encode(tail)]);
      const res = await call("/v1/ingest/events", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: bytes });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "malformed_batch", message: expect.stringContaining("UTF-8") });
    }
    expect(await acceptedAt(id)).toBe(0);
    // Kept as text, with U+FFFD for the bad byte.
    const kept = (await deadLetters()).filter((l) => l.body.input.includes(`${eventId}\ufffd`));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.every((l) => l.body.rejections[0]?.code === "malformed")).toBe(true);
  });

  it("answers 415 for a body that is not JSON or NDJSON, and reads text/plain (fetch's default for a string) and untyped bodies as JSON", async () => {
    const res = await postEvents("a,b,c", await ingestKey(), "text/csv");
    expect(res.status).toBe(415);
    const { id } = await createClient();
    const plain = await postEvents(JSON.stringify([event(id)]), await ingestKey(), "text/plain;charset=UTF-8");
    expect(plain.status).toBe(200);
    expect(await plain.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    // Bytes, unlike a string, give the request no content type.
    const untyped = await call("/v1/ingest/events", { method: "POST", headers: { authorization: `Bearer ${await ingestKey()}` }, body: new TextEncoder().encode(JSON.stringify([event(id)])) });
    expect(untyped.headers.get("content-type")).toMatch(/json/);
    expect(await untyped.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it("answers 415 for a compressed body instead of reading it as malformed JSON, and keeps nothing of it", async () => {
    const { id } = await createClient();
    const text = JSON.stringify([event(id)]);
    const gzipped = await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer();
    const before = (await deadLetters()).length;
    const res = await call("/v1/ingest/events", {
      method: "POST",
      headers: { authorization: `Bearer ${await ingestKey()}`, "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipped,
    });
    expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([415, "unsupported_content_encoding"]);
    expect((await deadLetters()).length).toBe(before);
    const identity = await call("/v1/ingest/events", {
      method: "POST",
      headers: { authorization: `Bearer ${await ingestKey()}`, "content-type": "application/json", "content-encoding": "identity" },
      body: text,
    });
    expect(await identity.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  });

  it("answers 413 for more than 10,000 records, as an array or as NDJSON lines, asking for smaller batches; takes 10,000", async () => {
    const key = await ingestKey();
    const records = (n: number) => Array.from({ length: n }, () => "{}");
    for (const [body, type] of [[`[${records(10_001).join(",")}]`, "application/json"], [records(10_001).join("\n"), "application/x-ndjson"]] as const) {
      const res = await postEvents(body, key, type);
      expect([type, res.status]).toEqual([type, 413]);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("too_many_records");
    }
    // Records that are read, each refused on its own: the batch itself was not too large.
    for (const [body, type] of [[`[${records(10_000).join(",")}]`, "application/json"], [records(10_000).join("\n"), "application/x-ndjson"]] as const) {
      const res = await postEvents(body, key, type);
      expect([type, res.status]).toEqual([type, 200]);
      expect(((await res.json()) as { rejected: unknown[] }).rejected).toHaveLength(10_000);
    }
  });
});

describe("ingest API keys", () => {
  it("refuses a missing or unknown key with 401", async () => {
    const { id } = await createClient();
    for (const key of ["", "zmk_nope"]) {
      const res = await postEvents([event(id)], key);
      expect(res.status).toBe(401);
    }
    expect(await acceptedAt(id)).toBe(0);
  });

  it("refuses a token longer than any key without asking D1 or keeping it: random long tokens cannot fill an isolate", async () => {
    let queries = 0;
    const db = drizzle(withMethods(env.DB, { prepare: (q: string) => (queries++, env.DB.prepare(q)) }));
    expect(await ingestKeyFrom(db, `Bearer zmk_${"a".repeat(10_000)}`)).toBeNull();
    expect(queries).toBe(0);
    // A key's length is still looked up.
    expect(await ingestKeyFrom(db, `Bearer zmk_${"b".repeat(64)}`)).toBeNull();
    expect(queries).toBe(1);
  });

  it("lets a client-scoped key ingest for its client only: 403 for a batch all of another client's, a foreign record among its own rejected alone", async () => {
    const a = await createClient();
    const b = await createClient();
    const key = await ingestKey(a.id);
    expect((await postEvents([event(a.id)], key)).status).toBe(200);
    const invalid = event(b.id, { status: "bounced" });
    const refused = await postEvents([invalid, event(b.id), event(b.id)], key);
    expect(refused.status).toBe(403);
    // Named by its first record naming a client, valid or not: the client the key's topic holds.
    expect(((await refused.json()) as { error: { code: string; details: unknown } }).error).toMatchObject({ code: "client_not_allowed", details: { index: 0, client_id: b.id } });
    const mixed = await postEvents([event(a.id), event(b.id), event(a.id)], key);
    expect(await mixed.json()).toEqual({
      accepted: 2,
      duplicates: 0,
      rejected: [{ index: 1, code: "client_not_allowed", message: `this API key may only ingest for client ${a.id}` }],
    });
    // A record of the key's own client makes the batch its own, even one that is not valid.
    const ownInvalid = await postEvents([event(a.id, { status: "bounced" }), event(b.id)], key);
    expect(ownInvalid.status).toBe(200);
    expect(((await ownInvalid.json()) as BridgeResult).rejected.map((r) => [r.index, r.code])).toEqual([
      [0, "invalid_event"],
      [1, "client_not_allowed"],
    ]);
    expect(await acceptedAt(a.id)).toBe(3);
    expect(await acceptedAt(b.id)).toBe(0);
  });

  it("answers 403 for a batch naming only another client though none of its records is valid, and rejects unreadable ones alone", async () => {
    const a = await createClient();
    const b = await createClient();
    const key = await ingestKey(a.id);
    const letters = (await deadLetters()).length;
    const invalidOfB = await postEvents([event(b.id, { status: "bounced" }), event(b.id, { occurred_at: Date.now() + 7_200_000 })], key);
    expect(invalidOfB.status).toBe(403);
    expect(((await invalidOfB.json()) as { error: unknown }).error).toMatchObject({ code: "client_not_allowed", details: { index: 0, client_id: b.id } });
    expect((await deadLetters()).length).toBe(letters);
    // Records naming no client say nothing of whose topic this is: rejected one by one, kept, answered 200.
    const unreadable = await postEvents([{ status: "sent" }, 42], key);
    expect(unreadable.status).toBe(200);
    expect(((await unreadable.json()) as BridgeResult).rejected.map((r) => r.index)).toEqual([0, 1]);
    expect((await deadLetters()).length).toBe(letters + 1);
  });
});

describe("a request's rows at the client's object", () => {
  /**
   * Cloudflare's SQLite-backed Durable Objects refuse a string, BLOB or row over 2 MB; local workerd
   * does not, so this reads the largest outbox row (a call's or a group's detail rows) the object wrote.
   */
  const DO_MAX_VALUE_BYTES = 2_000_000;
  async function largestOutboxRow(clientId: string): Promise<number> {
    return runInDurableObject(counterOf(env, clientId), (_i, state) => {
      const sql = state.storage.sql;
      let max = 0;
      for (const { name } of sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE name GLOB 'outbox_[0-9]*'").toArray()) {
        max = Math.max(max, sql.exec<{ n: number | null }>(`SELECT MAX(length(CAST(rows AS BLOB))) AS n FROM ${name}`).one().n ?? 0);
      }
      return max;
    });
  }
  const wamid = (i: number) => `wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ5QkY3RjA4RjM4QjQ1RTZBRQA-${unique("m")}-${i}`;
  const delivered = (clientId: string, i: number, over: Record<string, unknown> = {}) => {
    const messageId = wamid(i);
    return event(clientId, { event_id: `${messageId}:delivered`, message_id: messageId, status: "delivered", phone_number_id: "106540352242922", template: "black_friday_2026_campaign_reminder_pt_br", ...over });
  };

  it("stays under the object's 2 MB value limit for 10,000 records of one client (4.5 MB), all stored", async () => {
    const { id } = await createClient();
    const res = await postEvents(Array.from({ length: 10_000 }, (_, i) => delivered(id, i)), await ingestKey());
    expect(await res.json()).toEqual({ accepted: 10_000, duplicates: 0, rejected: [] });
    expect(await largestOutboxRow(id)).toBeLessThanOrEqual(DO_MAX_VALUE_BYTES);
    const { body } = await counters(id, "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z");
    expect(body.minutes.reduce((s, m) => s + m.delivered!, 0)).toBe(10_000);
  });

  it("stays under it for wide text (3 bytes a character) and for concurrent requests grouped into one transaction", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const wide = "\u8a0a".repeat(1024);
    // Each request's rows are under a call's limit (about 0.9 MB); together, grouped, they were not.
    const requests = Array.from({ length: 4 }, (_, r) =>
      postEvents(Array.from({ length: 250 }, (_, i) => delivered(id, r * 1000 + i, { status: "failed", error_code: 131026, error_title: wide })), key),
    );
    for (const res of await Promise.all(requests)) expect(await res.json()).toMatchObject({ accepted: 250, duplicates: 0 });
    expect(await largestOutboxRow(id)).toBeLessThanOrEqual(DO_MAX_VALUE_BYTES);
  });
});
