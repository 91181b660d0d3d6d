import { describe, expect, it, vi } from "vitest";
import type { ClientRollup } from "../../durable-objects/rollups.ts";
import { emptyCounts } from "../../durable-objects/client-shards.ts";
import { relayRollups } from "../../workers/ingest/rollup-relay.ts";
import { withClockAhead } from "./helpers.ts";

describe("the rollup relay's drain", () => {
  it("relays a rollup queued while its last round's call was on its way", async () => {
    const relayed: string[] = [];
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    let calls = 0;
    const fakeEnv = fakeOverview(async (updates) => {
      calls += 1;
      relayed.push(...updates.map((u) => u.client_id));
      // Steady traffic: a request served during each round's call queues its client's rollup.
      // The 50th round's is the burst's last request.
      if (calls <= 50) relayRollups(fakeEnv, ctx, [rollupOf(calls < 50 ? `busy-${calls}` : "last")]);
    });
    relayRollups(fakeEnv, ctx, [rollupOf("first")]);
    while (pending.length > 0) await pending.shift();
    await new Promise((r) => setTimeout(r, 500));
    expect(calls).toBeGreaterThanOrEqual(50);
    // Every rollup handed to the relay reaches the Overview, within a relay interval or so.
    expect(relayed).toContain("last");
  });

  it("relays within an interval after the clock was set back", async () => {
    const relayed: string[] = [];
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p) };
    const fakeEnv = fakeOverview(async (updates) => void relayed.push(...updates.map((u) => u.client_id)));
    // A relay while the clock was an hour ahead (NTP then sets it back).
    await withClockAhead(3_600_000, async () => {
      relayRollups(fakeEnv, ctx, [rollupOf("ahead")]);
      while (pending.length > 0) await pending.shift();
    });
    expect(relayed).toEqual(["ahead"]);
    relayRollups(fakeEnv, ctx, [rollupOf("after")]);
    await vi.waitFor(() => expect(relayed).toContain("after"), { timeout: 1_000, interval: 10 });
    while (pending.length > 0) await pending.shift();
  });

  it("starts another drain when the running one is older than a request's waitUntil may last (its request was cut short)", async () => {
    const relayed: string[] = [];
    const ctx = { waitUntil: (_p: Promise<unknown>) => {} };
    // The first drain's call never ends: its request's waitUntil was cut short.
    const fakeEnv = fakeOverview((updates) => {
      if (updates.some((u) => u.client_id === "cut-short")) return new Promise<void>(() => {});
      relayed.push(...updates.map((u) => u.client_id));
      return Promise.resolve();
    });
    relayRollups(fakeEnv, ctx, [rollupOf("cut-short")]);
    await new Promise((r) => setTimeout(r, 200));
    await withClockAhead(25_000, async () => {
      relayRollups(fakeEnv, ctx, [rollupOf("later")]);
      await vi.waitFor(() => expect(relayed).toContain("later"), { timeout: 1_000, interval: 10 });
    });
  });
});

function rollupOf(id: string): ClientRollup {
  return { client_id: id, day: "2026-12-06", today: emptyCounts(), minutes: [], at: Date.now() };
}

/** An env whose every Overview shard takes relayed rollups with `relayed`. */
function fakeOverview(relayed: (updates: ClientRollup[]) => Promise<void>): Env {
  return { OVERVIEW_SHARDS: "1", OVERVIEW: { idFromName: (name: string) => name, get: () => ({ relayed }) } } as unknown as Env;
}
