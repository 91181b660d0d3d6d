import { describe, expect, it } from "vitest";
import type { ClientRollup } from "../../durable-objects/rollups.ts";
import { emptyCounts } from "../../durable-objects/client-shards.ts";
import { relayRollups } from "../../workers/ingest/rollup-relay.ts";

describe("the rollup relay's drain", () => {
  it("relays a rollup queued while its last round's call was on its way", async () => {
    const relayed: string[] = [];
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const rollup = (id: string): ClientRollup => ({ client_id: id, day: "2026-12-06", today: emptyCounts(), minutes: [], at: Date.now() });
    let calls = 0;
    const fakeEnv = {
      OVERVIEW_SHARDS: "1",
      OVERVIEW: {
        idFromName: (name: string) => name,
        get: () => ({
          relayed: async (updates: ClientRollup[]) => {
            calls += 1;
            relayed.push(...updates.map((u) => u.client_id));
            // Steady traffic: a request served during each round's call queues its client's rollup.
            // The 50th round's is the burst's last request.
            if (calls <= 50) relayRollups(fakeEnv, ctx, [rollup(calls < 50 ? `busy-${calls}` : "last")]);
          },
        }),
      },
    } as unknown as Env;
    relayRollups(fakeEnv, ctx, [rollup("first")]);
    while (pending.length > 0) await pending.shift();
    await new Promise((r) => setTimeout(r, 500));
    expect(calls).toBeGreaterThanOrEqual(50);
    // Every rollup handed to the relay reaches the Overview, within a relay interval or so.
    expect(relayed).toContain("last");
  });
});
