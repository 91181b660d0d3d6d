import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { createClient, ingestKey, postEvents, postWebhook, unique } from "./helpers.ts";

const AT = Date.UTC(2026, 10, 20, 9, 15, 30);

function event(clientId: string, status = "sent"): Record<string, unknown> {
  const messageId = `m-${unique("e")}`;
  return { event_id: `${messageId}:${status}`, message_id: messageId, client_id: clientId, status, occurred_at: AT, recipient: "5511987654321", category: "utility" };
}

function stats(res: Response): { calls: number; written: number; read: number; background: number } {
  return {
    calls: Number(res.headers.get("x-zapmeter-do-calls")),
    written: Number(res.headers.get("x-zapmeter-rows-written")),
    read: Number(res.headers.get("x-zapmeter-rows-read")),
    background: Number(res.headers.get("x-zapmeter-background-rows-written")),
  };
}

describe("ingest storage stats headers (outside production)", () => {
  it("state one Durable Object call per client and the rows the transaction wrote", async () => {
    const a = await createClient();
    const b = await createClient();
    const batch = [event(a.id), event(a.id), event(a.id), event(b.id)];
    const res = await postEvents(batch, await ingestKey());
    expect(res.status).toBe(200);
    const first = stats(res);
    expect(first.calls).toBe(2);
    // One event row per event, plus one outbox row per call; nothing was flushed yet.
    expect(first.written).toBeGreaterThanOrEqual(batch.length + 2);
    expect(first.background).toBe(0);

    const retry = await postEvents(batch, await ingestKey());
    expect(await retry.json()).toMatchObject({ accepted: 0, duplicates: 4 });
    const again = stats(retry);
    expect(again.calls).toBe(2);
    expect(again.written).toBe(0);
    expect(again.read).toBeGreaterThan(0);
  });

  it("are set on signed webhooks too", async () => {
    const { phones } = await createClient();
    const statuses = [statusObject({ id: `wamid.${unique("w")}`, status: "delivered", timestamp: AT / 1000 })];
    const res = await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses }]));
    expect(res.status).toBe(200);
    const s = stats(res);
    expect(s.calls).toBe(1);
    // The event row (which also carries the billing mark) + the outbox row.
    expect(s.written).toBeGreaterThanOrEqual(2);
  });

  it("count no calls when nothing was routed to a client", async () => {
    const statuses = [statusObject({ id: `wamid.${unique("w")}`, status: "sent", timestamp: AT / 1000 })];
    const res = await postWebhook(webhook([{ phoneNumberId: unique("unknown-pn"), statuses }]));
    expect(res.status).toBe(200);
    expect(stats(res)).toEqual({ calls: 0, written: 0, read: 0, background: 0 });
  });

  it("state, within the rows written, what the object wrote in the background since its previous call", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    await postEvents([event(id)], key);
    await runDurableObjectAlarm(counterOf(env, id));
    const next = stats(await postEvents([event(id)], key));
    // The flush: counter rows, marks and the next outbox table; then this call's event and outbox rows.
    expect(next.background).toBeGreaterThan(0);
    expect(next.written).toBe(next.background + 2);
  });
});
