/**
 * A client's object at its storage limit. A SQLite-backed Durable Object past its 10 GB refuses
 * writes with "database or disk is full: SQLITE_FULL" while reads and deletes still work; local
 * workerd enforces no limit, so the object's `sql.exec` is wrapped: while `state.full`, a statement
 * that allocates throws SQLite's message. No retry of the same request outlives that, so the other
 * clients' events are stored and answered, and the full client's are dead-lettered for a replay once
 * it has room (more shards), never answered 503 for as long as it stays full.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf, messageShard } from "../../durable-objects/client-shards.ts";
import { encodeBatch } from "../../durable-objects/event-batch.ts";
import type { NotificationEvent } from "../../schema/event.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { utcDate } from "../../schema/time.ts";
import { clearOfMinuteTurn } from "../minute-turn.ts";
import { admin, authed, call, createClient, deadLetters, ingestKey, postEvents, postJson, postWebhook, unique, withEnv, withMethods } from "./helpers.ts";
import { status } from "./billing-fixtures.ts";
import { detailEvent } from "./lake-fixtures.ts";
import { FULL, fillUp } from "./full-storage.ts";

const replay = async () => call(`/v1/admin/dead-letters/replay?date=${utcDate(Date.now())}`, authed(await admin(), { method: "POST" }));
const lettersHolding = async (text: string) => (await deadLetters()).filter((l) => l.body.input.includes(text));

describe("a client's object at its storage limit", () => {
  // A letter is filed under the day it was written and replayed by today's date.
  beforeEach(() => clearOfMinuteTurn());

  it("a bridged batch stores the other clients' records and answers 200, the full client's rejected and dead-lettered, replayed once it has room", async () => {
    const full = await createClient();
    const fine = await createClient();
    const state = { full: true };
    await fillUp(counterOf(env, full.id), state);
    const key = await ingestKey();
    const batch = [detailEvent(fine.id, 0), detailEvent(full.id, 1), detailEvent(fine.id, 2)];
    const refusal = { index: 1, code: "client_storage_full", message: expect.stringContaining(`client ${full.id}'s storage is full`) };
    const first = await postEvents(batch, key);
    expect([first.status, await first.json()]).toEqual([200, { accepted: 2, duplicates: 0, rejected: [refusal] }]);
    // A sender's retry (a redelivery) meets the same answer and writes the same letter, not a second.
    expect(await (await postEvents(batch, key)).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [refusal] });
    const letters = await lettersHolding(String(batch[1]!.event_id));
    expect(letters.map((l) => l.body.rejections)).toEqual([[{ at: 1, code: "client_storage_full", message: expect.any(String) }]]);
    expect(JSON.parse(letters[0]!.body.input)).toEqual([{ index: 1, record: JSON.stringify(batch[1]) }]);

    // Another letter of the day: a record of a client created after it came.
    const laterId = unique("later");
    const forLater = detailEvent(laterId, 3);
    expect((await (await postEvents([forLater], key)).json()) as unknown).toMatchObject({ rejected: [{ index: 0, code: "unknown_client" }] });
    await createClient({ id: laterId });

    // Replayed while the client is still full: the other letter is stored and deleted, the full
    // client's letter kept as it was, its record named at its index in the batch.
    const early = await replay();
    const answer = (await early.json()) as { remaining: { key: string; rejections: unknown[] }[] };
    expect(early.status).toBe(200);
    expect(answer.remaining.find((r) => r.key === letters[0]!.key)?.rejections).toEqual([{ at: 1, code: "client_storage_full", message: expect.stringContaining(`client ${full.id}'s storage is full`) }]);
    expect(await lettersHolding(String(forLater.event_id))).toHaveLength(0);
    expect(await lettersHolding(String(batch[1]!.event_id))).toEqual(letters);
    expect(await (await postEvents([forLater], key)).json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] });

    // Room again (the client given more shards): the replay stores the record and deletes its letter.
    state.full = false;
    expect((await replay()).status).toBe(200);
    expect(await lettersHolding(String(batch[1]!.event_id))).toHaveLength(0);
    expect(await (await postEvents(batch, key)).json()).toEqual({ accepted: 0, duplicates: 3, rejected: [] });
  });

  it("a webhook stores the other clients' statuses and answers 200, the full client's kept in a letter naming them, replayed once it has room", async () => {
    const full = await createClient();
    const fine = await createClient();
    const state = { full: true };
    await fillUp(counterOf(env, full.id), state);
    const now = Math.floor(Date.now() / 1000) - 60;
    const toFull = `wamid.${unique("full")}`;
    const payload = webhook([
      { phoneNumberId: fine.phones[0]!, statuses: [statusObject({ id: `wamid.${unique("fine")}`, status: "sent", timestamp: now })] },
      { phoneNumberId: full.phones[0]!, statuses: [statusObject({ id: toFull, status: "sent", timestamp: now })] },
    ]);
    const res = await postWebhook(payload);
    expect([res.status, await res.json()]).toEqual([200, { accepted: 1, duplicates: 0, ignored: 1 }]);
    const letters = await lettersHolding(toFull);
    expect(letters.map((l) => l.body.rejections)).toEqual([[{ at: "entry.0.changes.1.value.statuses.0", code: "client_storage_full", message: expect.stringContaining(full.id) }]]);

    state.full = false;
    expect((await replay()).status).toBe(200);
    expect(await lettersHolding(toFull)).toHaveLength(0);
    expect(await (await postWebhook(payload)).json()).toEqual({ accepted: 0, duplicates: 2, ignored: 0 });
  });

  it("an object failing in a way a retry can outlive is still a 503, whatever its message says, and dead-letters nothing", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const record = detailEvent(id, 0);
    const failures = [
      new Error("Durable Object is overloaded. Too many requests queued."),
      // The runtime's flag wins over the words.
      Object.assign(new Error(FULL), { retryable: true }),
      Object.assign(new Error(FULL), { overloaded: true }),
    ];
    const answers: [number, string][] = [];
    for (const error of failures) {
      const failing = withMethods(env.CLIENT_COUNTER, {
        get: () => ({ ingest: () => Promise.reject(error) }) as unknown as DurableObjectStub<ClientCounter>,
      } as Partial<DurableObjectNamespace<ClientCounter>>);
      const res = await withEnv({ CLIENT_COUNTER: failing }, "/v1/ingest/events", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify([record]),
      });
      answers.push([res.status, ((await res.json()) as { error: { code: string } }).error.code]);
    }
    expect(answers).toEqual(failures.map(() => [503, "downstream_unavailable"]));
    expect(await lettersHolding(String(record.event_id))).toHaveLength(0);
  });
});

describe("a grown client whose old shard is full", () => {
  const inShard1 = () => {
    for (;;) {
      const m = unique("wamid");
      if (messageShard(m, 2) === 1) return m;
    }
  };

  /** A client grown from 1 to 2 shards whose shard 0, full, holds `old`: statuses of `old` routed to shard 1 go on to it. */
  async function grownWithFullShard0(): Promise<{ id: string; old: string; t: number; key: string }> {
    const { id } = await createClient();
    const t = Date.now() - 60_000;
    const old = inShard1();
    const key = await ingestKey();
    expect((await postEvents([status(id, old, "sent", t)], key)).status).toBe(200);
    expect((await postJson(`/v1/admin/clients/${id}`, { shards: 2 }, await admin(), "PATCH")).status).toBe(200);
    await fillUp(counterOf(env, id, 0), { full: true });
    return { id, old, t, key };
  }

  it("rejects only the events that shard refused, stores the rest, and names that shard", async () => {
    const { id, old, t, key } = await grownWithFullShard0();
    const fresh = inShard1();
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const res = await postEvents([status(id, old, "delivered", t + 1_000), status(id, fresh, "sent", t)], key);
      const body = (await res.json()) as { accepted: number; rejected: { index: number; code: string }[] };
      const full = logged.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>).filter((l) => l.event === "counter_storage_full");
      expect({ status: res.status, accepted: body.accepted, rejected: body.rejected.map((r) => `${r.index} ${r.code}`), shards: full.map((l) => l.shard) }).toEqual({
        status: 200,
        accepted: 1,
        rejected: ["0 client_storage_full"],
        shards: [0],
      });
      expect((await counterOf(env, id, 1).totals(0, Number.MAX_SAFE_INTEGER)).sent).toBe(1);
    } finally {
      logged.mockRestore();
    }
  });

  it("throws the refusal to a caller that does not ask for refused parts, as a Worker of the code before does in a deploy", async () => {
    const { id, old, t } = await grownWithFullShard0();
    const events = [status(id, old, "delivered", t + 1_000), status(id, inShard1(), "sent", t)].map((e) => ({ ...e, received_at: t, source: "kafka" }));
    // Awaited in a try, not handed to expect: an RPC's promise handed on is also reported unhandled.
    let refused: unknown = null;
    try {
      await counterOf(env, id, 1).ingest({ id, timezone: "UTC", shards: 2, shard: 1 }, encodeBatch(events as NotificationEvent[]), { relayRollup: true });
    } catch (err) {
      refused = err;
    }
    expect(String(refused)).toContain(FULL);
  });
});
