import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { emptyCounts } from "../../durable-objects/client-shards.ts";
import type { Overview } from "../../durable-objects/overview.ts";
import { overviewShardStub } from "../../durable-objects/overview-shards.ts";
import { CHECKPOINT_INTERVAL_MS, type ClientRollup } from "../../durable-objects/rollups.ts";
import { hourStart } from "../../schema/live.ts";
import { MINUTE_MS, localDate } from "../../schema/time.ts";
import { unique } from "./helpers.ts";

/**
 * Cloudflare's SQLite-backed objects refuse a string or BLOB over 2 MB (SQLITE_TOOBIG,
 * developers.cloudflare.com/durable-objects/platform/limits/); local workerd takes it.
 */
const DO_MAX_VALUE_BYTES = 2 * 1024 * 1024;
/** A shard's clients at the planned load: shards = sending clients / 500 (docs/capacity.md). */
const BUSY_CLIENTS = 500;

/** Runs inside an Overview instance, with its private parts reachable. */
interface Inner {
  sql: SqlStorage;
  checkpoint(): void;
  unsaved: Set<string>;
  checkpointTimer: ReturnType<typeof setTimeout> | null;
}

/** A client that sent in every minute of the last hour, as a busy client's held rollup is (~6 KB saved). */
function fullHour(clientId: string, now: number): ClientRollup {
  const first = hourStart(now);
  const minutes = Array.from({ length: 60 }, (_, i) => ({ minute: first + i * MINUTE_MS, accepted: 0, sent: 120, delivered: 110, read: 60, failed: 2 }));
  return { client_id: clientId, day: localDate(now, "UTC"), today: { ...emptyCounts(), sent: 5_000, delivered: 4_800, read: 2_500, failed: 40 }, minutes, at: now };
}

/**
 * Runs `fn` with `inner`'s SQLite refusing what Cloudflare's refuses, and whatever `refuse` names
 * besides; `bound` gets the byte size of the largest string of each statement it ran.
 */
function likeCloudflare<T>(inner: Inner, fn: () => T, refuse: (query: string) => boolean = () => false): { result: T; bound: number[] } {
  const real = inner.sql;
  const bound: number[] = [];
  inner.sql = new Proxy(real, {
    get: (target, key) =>
      key === "exec"
        ? (query: string, ...bindings: unknown[]) => {
            const largest = Math.max(0, ...bindings.map((b) => (typeof b === "string" ? new TextEncoder().encode(b).byteLength : 0)));
            if (largest > DO_MAX_VALUE_BYTES) throw new Error("string or blob too big: SQLITE_TOOBIG");
            if (refuse(query)) throw new Error("SQLITE_IOERR");
            bound.push(largest);
            return target.exec(query, ...bindings);
          }
        : Reflect.get(target, key, target),
  });
  try {
    return { result: fn(), bound };
  } finally {
    inner.sql = real;
  }
}

const savedOf = (state: DurableObjectState, prefix: string) =>
  state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM rollups WHERE client_id LIKE ?", `${prefix}%`).one().n;

describe("overview checkpoint", () => {
  it("saves a shard of 500 busy clients in statements that each bind less than the 2 MB a value may hold", async () => {
    const shard = overviewShardStub(env, 2);
    const prefix = unique("busy");
    // One relay round's rollups: ~3 MB of rows, which one statement bound as a single string until 2026-12-06.
    await shard.relayed(Array.from({ length: BUSY_CLIENTS }, (_, i) => fullHour(`${prefix}-${i}`, Date.now())));
    const receipt = await shard.rollup(fullHour(`${prefix}-0`, Date.now() + 1));
    const outcome = await runInDurableObject(shard, (o: Overview, state) => {
      const inner = o as unknown as Inner;
      const { bound } = likeCloudflare(inner, () => inner.checkpoint());
      return { bound, saved: savedOf(state, prefix), unsaved: inner.unsaved.size, savedThrough: o.saved().savedThrough };
    });
    expect(outcome.bound.length).toBeGreaterThan(1);
    expect(Math.max(...outcome.bound)).toBeLessThanOrEqual(DO_MAX_VALUE_BYTES);
    expect(outcome).toMatchObject({ saved: BUSY_CLIENTS, unsaved: 0 });
    expect(outcome.savedThrough).toBeGreaterThanOrEqual(receipt.n);
  });

  it("saves the rest when a statement fails, keeps its rows for a checkpoint it arms, and says all is saved only then", async () => {
    const shard = overviewShardStub(env, 3);
    const prefix = unique("busy");
    await shard.relayed(Array.from({ length: BUSY_CLIENTS }, (_, i) => fullHour(`${prefix}-${i}`, Date.now())));
    const receipt = await shard.rollup(fullHour(`${prefix}-0`, Date.now() + 1));
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      const failed = await runInDurableObject(shard, (o: Overview, state) => {
        const inner = o as unknown as Inner;
        let failures = 1;
        likeCloudflare(inner, () => inner.checkpoint(), (query) => query.includes("INSERT INTO rollups") && failures-- > 0);
        return { saved: savedOf(state, prefix), unsaved: inner.unsaved.size, armed: inner.checkpointTimer !== null, savedThrough: o.saved().savedThrough };
      });
      expect(failed.unsaved).toBeGreaterThan(0);
      expect(failed.saved).toBe(BUSY_CLIENTS - failed.unsaved);
      expect(failed.armed).toBe(true);
      expect(failed.savedThrough).toBeLessThan(receipt.n);
      expect(warnings.mock.calls.some(([line]) => String(line).includes('"event":"overview_checkpoint_failed"'))).toBe(true);
      // Before, a failed checkpoint left no timer: what it held waited for the next rollup, if any came.
      const retried = () =>
        runInDurableObject(shard, (o: Overview, state) => {
          const inner = o as unknown as Inner;
          return { saved: savedOf(state, prefix), unsaved: inner.unsaved.size, receiptSaved: o.saved().savedThrough >= receipt.n };
        });
      await vi.waitFor(async () => expect(await retried()).toEqual({ saved: BUSY_CLIENTS, unsaved: 0, receiptSaved: true }), { timeout: CHECKPOINT_INTERVAL_MS + 3_000, interval: 100 });
    } finally {
      warnings.mockRestore();
    }
  });
});
