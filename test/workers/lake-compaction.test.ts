import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { effectiveParts, listParts } from "../../workers/lake/layout.ts";
import { openPart } from "../../workers/lake/reader.ts";
import { sourceRange } from "../../workers/lake/sources.ts";
import { createClient, ingestKey, postEvents, runCron } from "./helpers.ts";
import { detailEvent, flush, readParquet, report } from "./lake-fixtures.ts";

const DAY = "2026-11-18";
const RANGE = { from: "2026-11-18T00:00:00Z", to: "2026-11-19T00:00:00Z", format: "parquet" };

async function keys(clientId: string): Promise<string[]> {
  return (await env.LAKE.list({ prefix: `lake/notifications/client_id=${clientId}/date=${DAY}/` })).objects.map((o) => o.key).sort();
}

async function reportIds(clientId: string): Promise<string[]> {
  const { rows } = await readParquet(await (await report(clientId, RANGE)).arrayBuffer());
  return rows.map((r) => r.event_id as string).sort();
}

/** Three flushes on the same closed day: three small files. */
async function threeSmallFiles(clientId: string): Promise<string[]> {
  const key = await ingestKey();
  const ids: string[] = [];
  for (let f = 0; f < 3; f++) {
    // Offsets that stay on 2026-11-18 (DAY1 is 23:59:58; go back in time).
    const events = Array.from({ length: 4 }, (_, i) => detailEvent(clientId, -(f * 10 + i + 10)));
    await postEvents(events, key);
    await flush(clientId);
    ids.push(...events.map((e) => e.event_id as string));
  }
  return ids.sort();
}

async function runHousekeeping(): Promise<void> {
  await runCron("30 3 * * *", Date.parse("2026-11-20T03:30:00Z"));
}

describe("housekeeping compaction", () => {
  it("merges a closed day's small files into one covering file, rows unchanged", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
    expect(await keys(id)).toEqual([1, 2, 3].map((s) => `lake/notifications/client_id=${id}/date=${DAY}/part-${s}-${s}.parquet`));
    expect(await reportIds(id)).toEqual(ids);

    await runHousekeeping();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
    expect(await reportIds(id)).toEqual(ids);

    // Running again changes nothing.
    await runHousekeeping();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`]);
  });

  it("a reader that listed the small files just before they were removed reads their slice of the compacted file", async () => {
    const { id } = await createClient();
    await threeSmallFiles(id);
    const before = await listParts(env.LAKE, id, DAY);
    const middle = before.find((p) => p.first === 2)!;
    const middleRows = [];
    for await (const g of (await openPart(env.LAKE, middle)).rows()) middleRows.push(...g);

    await runHousekeeping();
    const [compacted] = effectiveParts(await listParts(env.LAKE, id, DAY)).live;
    const reader = await openPart(env.LAKE, compacted!);
    const range = sourceRange(reader.metadata.key_value_metadata, middle)!;
    const slice = [];
    for await (const g of reader.rows(range[0], range[1])) slice.push(...g);
    expect(slice).toEqual(middleRows);
  });

  it("late events after compaction land in a new file that the next run folds in, and a re-written old range is never read twice", async () => {
    const { id } = await createClient();
    const ids = await threeSmallFiles(id);
    await runHousekeeping();
    const late = detailEvent(id, -100);
    await postEvents([late], await ingestKey());
    await flush(id);
    // A stale copy of an absorbed range (a flush retried across the compaction) is superseded, not read.
    const old = await env.LAKE.get(`lake/notifications/client_id=${id}/date=${DAY}/part-1-3.parquet`);
    await env.LAKE.put(`lake/notifications/client_id=${id}/date=${DAY}/part-2-2.parquet`, await old!.arrayBuffer());
    const all = [...ids, late.event_id as string].sort();
    expect(await reportIds(id)).toEqual(all);

    await runHousekeeping();
    expect(await keys(id)).toEqual([`lake/notifications/client_id=${id}/date=${DAY}/part-1-4.parquet`]);
    expect(await reportIds(id)).toEqual(all);
  });

  it("leaves today's partition alone", async () => {
    const { id } = await createClient();
    await threeSmallFiles(id);
    await runCron("30 3 * * *", Date.parse("2026-11-18T03:30:00Z"));
    expect(await keys(id)).toHaveLength(3);
  });
});
