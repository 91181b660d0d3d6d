import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { createClient, failingBucket, ingestKey, postEvents, unique, withEnv } from "./helpers.ts";

/**
 * The answers Kafka Connect's HTTP sink, Redpanda Connect and the bridge decide retries on: 429/503 (with
 * Retry-After) exactly when the same batch can succeed later, other 4xx never (docs/kafka.md).
 */

const AT = Date.UTC(2026, 10, 20, 9, 15, 30);

function event(clientId: string): Record<string, unknown> {
  const messageId = `m-${unique("e")}`;
  return { event_id: `${messageId}:accepted`, message_id: messageId, client_id: clientId, status: "accepted", occurred_at: AT, recipient: "5511987654321" };
}

describe("retry signals of POST /v1/ingest/events", () => {
  it("answers 503 with Retry-After when a Durable Object write fails, and the same batch retried later is stored once", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const batch = [event(id), event(id), event(id)];
    const stub = counterOf(env, id);
    // A real failure inside the object's transaction: its meta table is gone until the object restarts.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("DROP TABLE meta");
    });

    const logged = vi.spyOn(console, "error");
    const failed = await postEvents(batch, key);
    expect(failed.status).toBe(503);
    expect(failed.headers.get("retry-after")).toBe("2");
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe("downstream_unavailable");
    // The operator's line names the object that failed (docs/operations.md).
    const line = logged.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>).find((l) => l.event === "counter_ingest_failed");
    expect(line).toMatchObject({ level: "error", client_id: id, shard: 0, error: { message: expect.stringContaining("meta") } });

    await evictDurableObject(stub);
    const retried = await postEvents(batch, key);
    expect(retried.status).toBe(200);
    expect(retried.headers.get("retry-after")).toBeNull();
    expect(await retried.json()).toEqual({ accepted: 3, duplicates: 0, rejected: [] });
    expect(await (await postEvents(batch, key)).json()).toEqual({ accepted: 0, duplicates: 3, rejected: [] });
  });

  it("answers 503 with Retry-After, having stored nothing, when the DLQ cannot keep the batch's rejected records; the retry stores the batch once", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const body = JSON.stringify([event(id), { ...event(id), status: "bounced" }]);
    const failed = await withEnv({ LAKE: failingBucket }, "/v1/ingest/events", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body });
    expect(failed.status).toBe(503);
    expect(failed.headers.get("retry-after")).toBe("2");
    expect(((await failed.json()) as { error: { code: string } }).error.code).toBe("dead_letter_unavailable");
    expect(await (await postEvents(body, key)).json()).toEqual({ accepted: 1, duplicates: 0, rejected: [{ index: 1, code: "invalid_event", message: expect.any(String) }] });
  });

  it("sends no Retry-After with the answers a retry cannot fix", async () => {
    const a = await createClient();
    const b = await createClient();
    const scoped = await ingestKey(a.id);
    const key = await ingestKey();
    const answers = [
      await postEvents([event(a.id)], "zmk_wrong"),
      await postEvents([event(b.id)], scoped),
      await postEvents("[{", key),
      await postEvents("a,b", key, "text/csv"),
      await postEvents(`[${Array.from({ length: 10_001 }, () => "{}").join(",")}]`, key),
    ];
    expect(answers.map((r) => r.status)).toEqual([401, 403, 400, 415, 413]);
    for (const r of answers) expect(r.headers.get("retry-after")).toBeNull();
  });
});
