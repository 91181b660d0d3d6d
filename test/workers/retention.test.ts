import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { eventTableDdl, eventTableFor } from "../../durable-objects/client-counter-tables.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { createClient, runCron } from "./helpers.ts";

/** The night's cron of 2026-11-20: the event tables of September, October and November are kept. */
const NIGHT = Date.UTC(2026, 10, 20, 3, 30);

async function keep(date: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, j) =>
        env.LAKE.put(`dlq/date=${date}/${String(i + j).padStart(4, "0")}.json`, JSON.stringify({ received_at: Date.parse(`${date}T12:00:00Z`), source: "whatsapp", input: "{}" })),
      ),
    );
  }
}

async function lettersOf(date: string): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  do {
    const page = await env.LAKE.list({ prefix: `dlq/date=${date}/`, cursor });
    n += page.objects.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return n;
}

describe("dead letters: deleted once replay refuses them", () => {
  it("deletes the days outside the dedup window in the nightly cron, every page of them, and keeps the days replay still takes", async () => {
    // 2026-09-07: a Meta retry among it may repeat events of 2026-08-31, whose table is gone by November.
    await keep("2026-07-31", 3);
    await keep("2026-09-07", 1001);
    // 2026-09-08: its retries reach back to 2026-09-01, still kept; so is everything after it.
    await keep("2026-09-08", 2);
    await keep("2026-11-19", 1);
    await runCron("30 3 * * *", NIGHT);
    expect(await lettersOf("2026-07-31")).toBe(0);
    expect(await lettersOf("2026-09-07")).toBe(0);
    expect(await lettersOf("2026-09-08")).toBe(2);
    expect(await lettersOf("2026-11-19")).toBe(1);
  });
});

describe("event tables: dropped past retention in a shard that no longer sends", () => {
  it("has the nightly cron drop the expired tables of a sharded client's quiet shard", async () => {
    const { id } = await createClient({ shards: 2 });
    const quiet = counterOf(env, id, 1);
    const now = Date.now();
    const monthsBack = (n: number) => eventTableFor(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth() - n, 15));
    // The shard's last events, three and two months back; nothing has reached it since.
    await runInDurableObject(quiet, (_i, state) => {
      for (const t of [monthsBack(3), monthsBack(2)]) {
        state.storage.sql.exec(eventTableDdl(t));
        state.storage.sql.exec(`INSERT INTO ${t} (message_id, event_ref) VALUES ('wamid.quiet', 'wamid.quiet:sent')`);
      }
    });
    await evictDurableObject(quiet);
    await runCron("30 3 * * *", now);
    const tables = await runInDurableObject(quiet, (_i, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'events_[0-9]*' ORDER BY name").toArray().map((r) => r.name),
    );
    expect(tables).toEqual([monthsBack(2)]);
  });
});
