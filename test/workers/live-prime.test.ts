import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Overview } from "../../durable-objects/overview.ts";
import type { OverviewLiveMessage } from "../../schema/live.ts";
import { admin, createClient } from "./helpers.ts";
import { LiveSocket, OVERVIEW_EVICTION_TEST_MS, ingestNow } from "./live-helpers.ts";

type Msg = OverviewLiveMessage;
const overview = () => env.OVERVIEW.get(env.OVERVIEW.idFromName("overview-0")) as DurableObjectStub<Overview>;

describe("overview priming", () => {
  it("asks clients it never heard from for their counters, once, when its first viewer arrives", async () => {
    const { id, phones } = await createClient();
    await ingestNow(phones[0]!, ["sent", "delivered", "read"]);
    // As if the counts predate the Overview (first deploy): once the client's own rollup has landed, drop it.
    const held = () =>
      runInDurableObject(overview(), (instance: Overview, state) => {
        (instance as unknown as { checkpoint(): void }).checkpoint();
        return state.storage.sql.exec("SELECT client_id FROM rollups WHERE client_id = ?", id).toArray().length;
      });
    while ((await held()) === 0) await runInDurableObject(overview(), () => undefined);
    await runInDurableObject(overview(), (_: Overview, state) => void state.storage.sql.exec("DELETE FROM rollups"));
    await evictDurableObject(overview());

    const ws = await LiveSocket.connect("/v1/live", { authorization: `Bearer ${await admin()}` });
    const snap = await ws.next<Msg>();
    expect(snap.clients.find((c) => c.client_id === id)?.today.sent).toBe(0);
    const primed = await ws.nextWhere<Msg>((m) => m.clients.some((c) => c.client_id === id));
    expect(primed.clients.find((c) => c.client_id === id)).toMatchObject({ today: { sent: 1, delivered: 1, read: 1 }, hour: { sent: 1 } });
    ws.close();

    const flagged = await runInDurableObject(overview(), (_: Overview, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM meta WHERE key = 'primed'").one().n,
    );
    expect(flagged).toBe(1);
  }, OVERVIEW_EVICTION_TEST_MS);
});
