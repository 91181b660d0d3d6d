import { eventKey } from "../../durable-objects/client-counter-tables.ts";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { BridgedEvent, CATEGORIES, PRICING_TYPES, aheadOfReceipt } from "../../schema/event.ts";
import { createClient, ingestKey, postEvents, postWebhook, unique } from "./helpers.ts";
import { counterState, dlqKeys, expectClientError, lettersSince } from "./hostile-helpers.ts";
import { hostileString, hostileValue, mutated, validEvent } from "./hostile-records.ts";

/**
 * Generated hostile input (fast-check, drawn from the zod schemas in schema/): valid events with
 * hostile mutations, and arbitrary bodies. Whatever arrives: no 5xx, a clear 4xx or a per-record
 * rejection, the rejected input kept in dlq/, and the Durable Object's state changed by exactly the
 * records the schema accepts. fast-check prints the seed and path of any counterexample.
 */

const RUNS = 100;

let batchNo = 0;
/** Generated records and bodies sent, for the figures in docs/correctness.md. */
const sent = { records: 0, rejected: 0, webhooks: 0, bodies: 0 };

afterAll(() => console.log(`generated corpus: ${JSON.stringify(sent)}`));

describe("generated hostile records on the Kafka bridge", () => {
  it("rejects exactly what the schema rejects, keeps it in dlq/, and stores only what it accepts", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const batch = fc.integer({ min: 1, max: 12 }).chain((n) => {
      batchNo += 1;
      return fc.tuple(...Array.from({ length: n }, (_, i) => mutated(validEvent(id, `hg-${batchNo}-${i}`))));
    });
    await fc.assert(
      fc.asyncProperty(batch, async (records) => {
        const body = JSON.stringify(records);
        // The oracle sees what the server sees: the records after a JSON round trip.
        const wire = JSON.parse(body) as unknown[];
        const verdicts = wire.map((r) => {
          const p = BridgedEvent.safeParse(r);
          if (!p.success) return { ok: false as const, code: "invalid_event" };
          if (aheadOfReceipt(p.data.occurred_at, Date.now())) return { ok: false as const, code: "occurred_in_future" };
          if (p.data.client_id !== id) return { ok: false as const, code: "unknown_client" };
          return { ok: true as const, key: eventKey(p.data.message_id, p.data.event_id) };
        });
        const before = await counterState(id);
        const lettersBefore = await dlqKeys();

        const res = await postEvents(body, key);
        sent.records += records.length;
        sent.rejected += verdicts.filter((v) => !v.ok).length;
        expect(res.status, await res.clone().text()).toBe(200);
        const out = (await res.json()) as { accepted: number; duplicates: number; rejected: { index: number; code: string }[] };
        const rejected = verdicts.flatMap((v, index) => (v.ok ? [] : [{ index, code: v.code }]));
        expect(out.rejected.map(({ index, code }) => ({ index, code }))).toEqual(rejected);
        expect(out.accepted + out.duplicates).toBe(verdicts.length - rejected.length);

        const letters = await lettersSince(lettersBefore);
        if (rejected.length === 0) expect(letters).toEqual([]);
        else {
          expect(letters).toHaveLength(1);
          expect(letters[0]!.body.rejections.map((r) => r.at)).toEqual(rejected.map((r) => r.index));
          const kept = JSON.parse(letters[0]!.body.input) as { index: number; record: string }[];
          expect(kept.map((k) => JSON.parse(k.record) as unknown)).toEqual(rejected.map((r) => wire[r.index]));
        }

        const after = await counterState(id);
        const acceptedIds = new Set(verdicts.flatMap((v) => (v.ok ? [v.key] : [])));
        expect(after.seen).toEqual(new Set([...before.seen, ...acceptedIds]));
        expect(after.total - before.total).toBe(out.accepted);
        expect(after.total).toBe(after.seen.size);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);
});

/** A webhook from the WhatsApp schema's shape, with hostile values planted at random places. */
function hostileWebhook(phone: string) {
  const status = fc.record({
    id: fc.oneof(fc.constant(`wamid.${unique("hw")}`), hostileString),
    status: fc.oneof(fc.constantFrom("sent", "delivered", "read", "failed"), hostileValue),
    timestamp: fc.oneof(fc.integer({ min: 1_700_000_000, max: 1_800_000_000 }).map(String), hostileValue),
    recipient_id: fc.oneof(fc.constant("5511987654321"), hostileValue),
    pricing: fc.option(fc.record({ billable: fc.oneof(fc.boolean(), hostileValue), category: fc.oneof(fc.constantFrom(...CATEGORIES), hostileValue), type: fc.oneof(fc.constantFrom(...PRICING_TYPES), hostileValue) })),
    extra: hostileValue,
  });
  return fc.record({
    object: fc.oneof(fc.constant("whatsapp_business_account"), hostileValue),
    field: fc.oneof(fc.constant("messages"), hostileValue),
    phone: fc.oneof(fc.constant(phone), hostileValue),
    statuses: fc.oneof(fc.array(status, { maxLength: 6 }), hostileValue),
  }).map((w) => ({
    object: w.object,
    entry: [{ id: "WABA", changes: [{ field: w.field, value: { messaging_product: "whatsapp", metadata: { phone_number_id: w.phone }, statuses: w.statuses } }] }],
  }));
}

describe("generated hostile webhooks and bodies", () => {
  it("answers 200 or a clear 400 to any signed webhook, keeps refused bodies verbatim, and counts only what it accepted", async () => {
    const { id, phones } = await createClient();
    await fc.assert(
      fc.asyncProperty(hostileWebhook(phones[0]!), async (payload) => {
        const body = JSON.stringify(payload);
        const before = await counterState(id);
        const lettersBefore = await dlqKeys();
        const res = await postWebhook(body);
        sent.webhooks += 1;
        const letters = await lettersSince(lettersBefore);
        const after = await counterState(id);
        if (res.status === 200) {
          const out = (await res.json()) as { accepted: number };
          expect(after.seen.size - before.seen.size).toBe(out.accepted);
          for (const l of letters) expect(l.body.input).toBe(body);
        } else {
          expect((await expectClientError(res, 400)).code).toBe("malformed_webhook");
          expect(letters.map((l) => l.body.input)).toEqual([body]);
          expect(after.seen).toEqual(before.seen);
        }
        expect(after.total).toBe(after.seen.size);
      }),
      { numRuns: RUNS },
    );
  }, 120_000);

  it("never answers 5xx to arbitrary bodies on either ingest path, and keeps what it refuses", async () => {
    const key = await ingestKey();
    const body = fc.oneof(fc.string({ unit: "binary", maxLength: 200 }), fc.json({ maxDepth: 4 }), fc.jsonValue().map((v) => JSON.stringify(v)));
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom("application/json", "application/x-ndjson"), async (text, contentType) => {
        const lettersBefore = await dlqKeys();
        sent.bodies += 1;
        const hook = await postWebhook(text);
        if (hook.status !== 200) {
          await expectClientError(hook, 400);
          expect((await lettersSince(lettersBefore)).map((l) => l.body.input)).toEqual([text]);
        }
        const bridged = await postEvents(text, key, contentType);
        if (bridged.status !== 200) expect((await expectClientError(bridged)).code).toBe("malformed_batch");
        else {
          const out = (await bridged.json()) as { accepted: number; rejected: unknown[] };
          expect(out.accepted).toBe(0);
        }
      }),
      { numRuns: RUNS },
    );
  }, 120_000);
});
