import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { messageShard, shardName } from "../../durable-objects/client-shards.ts";
import type { Overview } from "../../durable-objects/overview.ts";
import type { OverviewLiveMessage } from "../../schema/live.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { admin, createClient, unique } from "./helpers.ts";
import { LiveSocket, ingestNow } from "./live-helpers.ts";

type Msg = OverviewLiveMessage;
const overview = () => env.OVERVIEW.get(env.OVERVIEW.idFromName("overview-0")) as DurableObjectStub<Overview>;

describe("overview priming", () => {
  it("asks clients it never heard from for their counters, once, when its first viewer arrives", async () => {
    const { id, phones } = await createClient();
    await ingestNow(phones[0]!, ["sent", "delivered", "read"]);
    // A sharded client whose only event is in its shard 1: priming asks every shard.
    const sharded = (await createClient({ shards: 2 })).id;
    const inShard1 = Array.from({ length: 40 }, () => unique("wamid")).find((m) => messageShard(m, 2) === 1)!;
    await ingest([status(sharded, inShard1, "sent", Date.now())]);
    // As if the counts predate the Overview (first deploy): once the clients' own rollups have landed, drop them.
    const held = () =>
      runInDurableObject(overview(), (instance: Overview, state) => {
        (instance as unknown as { checkpoint(): void }).checkpoint();
        return state.storage.sql.exec("SELECT client_id FROM rollups WHERE client_id IN (?, ?)", id, shardName(sharded, 1)).toArray().length;
      });
    while ((await held()) < 2) await runInDurableObject(overview(), () => undefined);
    await runInDurableObject(overview(), (_: Overview, state) => void state.storage.sql.exec("DELETE FROM rollups"));
    await evictDurableObject(overview());

    const ws = await LiveSocket.connect("/v1/live", { authorization: `Bearer ${await admin()}` });
    const snap = await ws.next<Msg>();
    expect(snap.clients.find((c) => c.client_id === id)?.today.sent).toBe(0);
    const primed = await ws.nextWhere<Msg>((m) => m.clients.some((c) => c.client_id === id));
    expect(primed.clients.find((c) => c.client_id === id)).toMatchObject({ today: { sent: 1, delivered: 1, read: 1 }, hour: { sent: 1 } });
    ws.close();

    // The flag is written once every client asked has answered, which may come after the first
    // primed rows went out (updates do not wait for the last of the clients asked, 32 at a time).
    const flagged = () =>
      runInDurableObject(overview(), (_: Overview, state) => state.storage.sql.exec("SELECT count(*) AS n FROM meta WHERE key = 'primed'").one().n);
    while ((await flagged()) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await flagged()).toBe(1);
    // Priming is over once flagged: a viewer now gets every primed client in its snapshot.
    const later = await LiveSocket.connect("/v1/live", { authorization: `Bearer ${await admin()}` });
    expect((await later.next<Msg>()).clients.find((c) => c.client_id === sharded)?.today.sent).toBe(1);
    later.close();
  });
});
