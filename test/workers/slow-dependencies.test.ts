import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";
import { counterOf, emptyCounts } from "../../durable-objects/client-shards.ts";
import type { Overview } from "../../durable-objects/overview.ts";
import { overviewShardStub } from "../../durable-objects/overview-shards.ts";
import type { ClientRollup } from "../../durable-objects/rollups.ts";
import { localDate, minuteOf } from "../../schema/time.ts";
import { counters, createClient, ingestKey, postEvents, unique, withEnv, withMethods } from "./helpers.ts";
import { detailEvent, flush } from "./lake-fixtures.ts";

/** A promise that never settles: a dependency that accepted the call and never answers. */
const never = <T,>(): Promise<T> => new Promise<T>(() => {});

/**
 * Starts `start` with setTimeout faked and, once the hanging dependency has been called (`hung`),
 * tells what it came to 1 ms before `limitMs` of fake time and at it: "still waiting", "returned", or
 * the message it failed with. Nothing but a timer of the code's own settles it when the dependency
 * hangs, so without one it is still waiting at both.
 */
async function outcomeAround(start: () => Promise<unknown>, hung: Promise<void>, limitMs: number): Promise<{ early: string; late: string }> {
  const realTimeout = setTimeout;
  vi.useFakeTimers({ toFake: ["setTimeout"] });
  try {
    const outcome = start().then(
      () => "returned",
      (err: Error) => err.message,
    );
    await hung;
    await vi.advanceTimersByTimeAsync(limitMs - 1);
    const early = await Promise.race([outcome, Promise.resolve("still waiting")]);
    await vi.advanceTimersByTimeAsync(1);
    const late = await Promise.race([outcome, new Promise<string>((r) => realTimeout(() => r("still waiting"), 200))]);
    return { early, late };
  } finally {
    vi.useRealTimers();
  }
}

/** `real` with the top Overview's `forwarded` answered by `answer`, which may pass the call on to the top. */
function withTopForwarded(real: Env, answer: (top: DurableObjectStub<Overview>, args: Parameters<Overview["forwarded"]>) => Promise<void>): Env {
  const topId = real.OVERVIEW.idFromName("overview-0");
  return {
    ...real,
    OVERVIEW: withMethods(real.OVERVIEW, {
      get: (objectId: DurableObjectId) => {
        const stub = real.OVERVIEW.get(objectId);
        if (!objectId.equals(topId)) return stub;
        return withMethods(stub, { forwarded: ((...args: Parameters<Overview["forwarded"]>) => answer(stub, args)) as never });
      },
    } as Partial<DurableObjectNamespace<Overview>>),
  };
}

/** The lake files of a client. */
async function lakeKeys(clientId: string): Promise<string[]> {
  const page = await env.LAKE.list({ prefix: `lake/notifications/client_id=${clientId}/` });
  return page.objects.map((o) => o.key).sort();
}

const backlog = (id: string) => runInDurableObject(counterOf(env, id), (i: ClientCounter) => i.objectStatus(Date.now()).lake_backlog_events);

describe("a dependency that hangs", () => {
  it("a lake put that never answers fails its flush after 60 s, and the flushes after it write the rows once", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    await postEvents([detailEvent(id, 1), detailEvent(id, 2)], key);
    const outcome = await runInDurableObject(counterOf(env, id), async (instance) => {
      const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
      const real = lake.bucket;
      let putCalled!: () => void;
      const called = new Promise<void>((resolve) => (putCalled = resolve));
      let puts = 0;
      lake.bucket = withMethods(real, {
        put: ((...args: Parameters<R2Bucket["put"]>) => {
          puts += 1;
          if (puts === 1) {
            putCalled();
            return never();
          }
          return real.put(...args);
        }) as R2Bucket["put"],
      });
      // Before the fix the flush waited for the put for ever.
      return outcomeAround(() => instance.flush(), called, 60_000);
    });
    expect(outcome.early).toBe("still waiting");
    expect(outcome.late).toBe(`the lake put of lake/notifications/client_id=${id}/date=2026-11-18/part-1-1.parquet took longer than 60000 ms`);
    expect(await backlog(id)).toBe(2);
    // The next flush is not held behind the hung one and writes the same range's file.
    expect((await flush(id)).status).toBe(200);
    expect(await backlog(id)).toBe(0);
    expect(await lakeKeys(id)).toEqual([
      `lake/notifications/client_id=${id}/date=2026-11-18/part-1-1.parquet`,
      `lake/notifications/client_id=${id}/date=2026-11-19/part-1-1.parquet`,
    ]);
  });

  it("an Overview that never answers holds the flush alarm 2 s, not until the runtime gives up on it, for a rollup and for saved()", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    // Relayed by the Worker: the object cannot tell whether the rollup arrived, so its alarm sends the whole hour.
    await postEvents([detailEvent(id, 1)], key);
    const stub = counterOf(env, id);
    /** Runs the alarm with the Overview's `method` hanging: what it came to after 1,999 ms and after 2,000. */
    const alarmWithHungOverview = (method: "rollup" | "saved") =>
      runInDurableObject(stub, async (instance, state) => {
        const live = (instance as unknown as { live: { env: Env } }).live;
        const real = live.env;
        let hungCalled!: () => void;
        const called = new Promise<void>((resolve) => (hungCalled = resolve));
        const OVERVIEW = withMethods(real.OVERVIEW, {
          get: (overviewId: DurableObjectId) =>
            withMethods(real.OVERVIEW.get(overviewId), {
              [method]: () => {
                hungCalled();
                return never();
              },
            }),
        } as Partial<DurableObjectNamespace<import("../../durable-objects/overview.ts").Overview>>);
        live.env = { ...real, OVERVIEW };
        try {
          // Before the fix the alarm waited for the Overview for ever.
          const { early, late } = await outcomeAround(() => instance.alarm(), called, 2_000);
          return { early, late, armed: (await state.storage.getAlarm()) !== null };
        } finally {
          live.env = real;
        }
      });
    const first = await alarmWithHungOverview("rollup");
    // The lake flush is done, and the alarm comes back to settle with the Overview.
    expect(first).toEqual({ early: "still waiting", late: "returned", armed: true });
    expect(await backlog(id)).toBe(0);
    // An answered rollup: the next alarm asks whether the Overview saved it.
    await runInDurableObject(stub, (instance) => instance.alarm());
    expect(await alarmWithHungOverview("saved")).toEqual({ early: "still waiting", late: "returned", armed: true });
  });

  /**
   * What the object's alarm does around its 5 minutes when `ask` (on the instance) left lake work
   * whose R2 listing never answers.
   */
  async function alarmWithListingNeverAnswering(id: string, ask: (instance: ClientCounter) => void) {
    return runInDurableObject(counterOf(env, id), async (instance) => {
      ask(instance);
      const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
      const real = lake.bucket;
      let listCalled!: () => void;
      const called = new Promise<void>((resolve) => (listCalled = resolve));
      lake.bucket = withMethods(real, {
        list: (() => {
          listCalled();
          return never();
        }) as R2Bucket["list"],
      });
      try {
        return await outcomeAround(() => instance.alarm(), called, 300_000);
      } finally {
        lake.bucket = real;
      }
    });
  }

  it("a compaction whose R2 listing never answers holds its alarm 5 minutes, not for as long as the object lives, so the next flush alarm can come", async () => {
    const { id } = await createClient();
    await postEvents([detailEvent(id, 1)], await ingestKey());
    // Before the fix the alarm waited for the listing for ever.
    expect(await alarmWithListingNeverAnswering(id, (instance) => instance.compactLake(id, ["2026-11-18"]))).toEqual({ early: "still waiting", late: "returned" });
  });

  it("an erasure whose R2 listing never answers holds its alarm 5 minutes, as a compaction does", async () => {
    const { id } = await createClient();
    await postEvents([detailEvent(id, 1)], await ingestKey());
    expect(await alarmWithListingNeverAnswering(id, (instance) => instance.eraseRecipient(id, 1, "5511999990000"))).toEqual({ early: "still waiting", late: "returned" });
  });

  it("an Overview shard sends the top one forward at a time: a slow top gets what came meanwhile merged in the next, not a call every interval", async () => {
    const id = unique("client");
    const shard = overviewShardStub(env, 2);
    type Inner = { env: Env; rollups: Map<string, Map<number, ClientRollup>> };
    const inside = <T,>(stub: DurableObjectStub<Overview>, fn: (o: Inner) => T) => runInDurableObject(stub, (o: Overview) => fn(o as unknown as Inner));
    const rollupOf = (sent: number): ClientRollup => {
      const at = Date.now();
      return { client_id: id, day: localDate(at, "UTC"), today: { ...emptyCounts(), sent }, minutes: [{ minute: minuteOf(at), ...emptyCounts(), sent }], at };
    };
    // The top answers the first forward only when the test says so; the gate lives in the shard's context, where it is awaited.
    const gate: { calls: number; release: (() => void) | null } = { calls: 0, release: null };
    await inside(shard, (o) => {
      o.env = withTopForwarded(o.env, (top, args) => {
        gate.calls += 1;
        if (gate.calls > 1) return top.forwarded(...args);
        return new Promise<void>((resolve) => (gate.release = resolve)).then(() => top.forwarded(...args));
      });
    });
    try {
      for (let sent = 1; sent <= 4; sent++) {
        await shard.rollup(rollupOf(sent));
        // Past the shard's forward interval (50 ms with one shard's count): each rollup would go in a forward of its own.
        await new Promise((r) => setTimeout(r, 80));
      }
      expect(gate.calls).toBe(1);
      await inside(shard, () => gate.release!());
      await vi.waitFor(async () => expect(await inside(overviewShardStub(env, 0), (o) => o.rollups.get(id)?.get(0)?.today.sent)).toBe(4), { timeout: 5_000 });
      expect(gate.calls).toBe(2);
    } finally {
      await inside(shard, (o) => void (o.env = { ...o.env, OVERVIEW: env.OVERVIEW }));
    }
  });

  it("a forward the top never answers counts as failed after 5 s, and what it carried goes again a second later", async () => {
    const id = unique("client");
    const shard = overviewShardStub(env, 3);
    const at = Date.now();
    const rollup: ClientRollup = { client_id: id, day: localDate(at, "UTC"), today: { ...emptyCounts(), sent: 7 }, minutes: [{ minute: minuteOf(at), ...emptyCounts(), sent: 7 }], at };
    const calls = await runInDurableObject(shard, async (instance: Overview) => {
      const o = instance as unknown as { env: Env };
      const real = o.env;
      let forwards = 0;
      o.env = withTopForwarded(real, (top, args) => (++forwards === 1 ? never() : top.forwarded(...args)));
      vi.useFakeTimers({ toFake: ["setTimeout"] });
      try {
        instance.rollup(rollup);
        // A fresh shard forwards a rollup at once (its timer due now).
        await vi.advanceTimersByTimeAsync(0);
        const first = forwards;
        await vi.advanceTimersByTimeAsync(4_999);
        const whileHung = forwards;
        // Failed at 5 s: the retry comes a second later.
        await vi.advanceTimersByTimeAsync(1_000);
        const beforeRetry = forwards;
        await vi.advanceTimersByTimeAsync(1);
        return { first, whileHung, beforeRetry, retried: forwards };
      } finally {
        vi.useRealTimers();
        o.env = real;
      }
    });
    // Before the fix the forward waited for ever and the shard sent nothing more of this client.
    expect(calls).toEqual({ first: 1, whileHung: 1, beforeRetry: 1, retried: 2 });
    await vi.waitFor(async () => expect(await runInDurableObject(overviewShardStub(env, 0), (o: Overview) => (o as unknown as { rollups: Map<string, Map<number, ClientRollup>> }).rollups.get(id)?.get(0)?.today.sent)).toBe(7), { timeout: 5_000 });
  });

  it("a bridged batch whose object answers only after the sender gave up commits once: the sender's retry, stored first, and the late call are one count", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const events = [detailEvent(id, 1), detailEvent(id, 2)];
    // The first request's object call waits until the test lets it through, as an overloaded object would.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const called = new Promise<void>((resolve) => (reached = resolve));
    const CLIENT_COUNTER = withMethods(env.CLIENT_COUNTER, {
      get: (objectId: DurableObjectId) => {
        const stub = env.CLIENT_COUNTER.get(objectId);
        return withMethods(stub, {
          ingest: ((...args: Parameters<ClientCounter["ingest"]>) => (reached(), gate.then(() => stub.ingest(...args)))) as never,
        });
      },
    } as Partial<DurableObjectNamespace<ClientCounter>>);
    const slow = withEnv({ CLIENT_COUNTER }, "/v1/ingest/events", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify(events),
    });
    await called;
    // The sender timed out and sent the batch again.
    expect(await (await postEvents(events, key)).json()).toEqual({ accepted: 2, duplicates: 0, rejected: [] });
    release();
    expect(await (await slow).json()).toEqual({ accepted: 0, duplicates: 2, rejected: [] });
    const { body } = await counters(id, "2026-11-18T00:00:00Z", "2026-11-20T00:00:00Z");
    expect(body.minutes.reduce((n, m) => n + m.sent! + m.delivered! + m.read! + m.failed!, 0)).toBe(2);
  });
});
