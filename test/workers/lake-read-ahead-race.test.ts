import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { compactPartition } from "../../workers/lake/compaction.ts";
import { reportRows, reportStream } from "../../workers/lake/report.ts";
import { EVENT_COLUMNS } from "../../schema/event.ts";
import { createClient, ingestKey, postEvents, withMethods } from "./helpers.ts";
import { DAY1, detailEvent, flush } from "./lake-fixtures.ts";

const DAY = "2026-11-18";
const BIG = 9 << 20;

/**
 * `bucket` with `bigKey` seen as a 9 MiB file (read by ranges): its bytes, zeros, then its footer
 * again at the end, so that the footer's offsets still point at its real column chunks. A ranged
 * GET reads the real object at that moment, so a deleted file is gone (null) here too.
 */
function seenLarge(bucket: R2Bucket, bigKey: string, served: () => void): R2Bucket {
  const list = async (o?: R2ListOptions): Promise<R2Objects> => {
    const page = await bucket.list(o);
    const objects = page.objects.map((obj) => ({ key: obj.key, size: obj.key === bigKey ? BIG : obj.size }) as R2Object);
    return page.truncated ? { objects, delimitedPrefixes: [], truncated: true, cursor: page.cursor } : { objects, delimitedPrefixes: [], truncated: false };
  };
  const get = async (key: string, o?: R2GetOptions) => {
    if (key !== bigKey || !o?.range) return bucket.get(key, o);
    const obj = await bucket.get(key);
    if (!obj) return null;
    const real = new Uint8Array(await obj.arrayBuffer());
    const n = real.byteLength;
    const metaLen = new DataView(real.buffer).getUint32(n - 8, true);
    const view = new Uint8Array(BIG);
    view.set(real, 0);
    view.set(real.subarray(n - metaLen - 8), BIG - metaLen - 8);
    const { offset, length } = o.range as { offset: number; length: number };
    const bytes = view.slice(offset, offset + length).buffer;
    served();
    return { arrayBuffer: async () => bytes } as unknown as R2ObjectBody;
  };
  return withMethods(bucket, { list, get } as Partial<R2Bucket>);
}

describe("reading ahead against a compaction", () => {
  it("a report whose consumer is still on the first file when a compaction replaces a larger file already opened ahead reads that file's rows from the compacted one", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    const ids: string[] = [];
    for (let f = 0; f < 3; f++) {
      const events = Array.from({ length: 4 }, (_, i) => -(f * 10 + i + 10)).map((k) => detailEvent(id, k, { occurred_at: DAY1 + k * 1_000 }));
      await postEvents(events, key);
      await flush(id);
      ids.push(...events.map((e) => e.event_id as string));
    }
    const big = `lake/notifications/client_id=${id}/date=${DAY}/part-2-2.parquet`;
    let footerServed!: () => void;
    const footer = new Promise<void>((r) => (footerServed = r));
    const bucket = seenLarge(env.LAKE, big, () => footerServed());
    const got: string[] = [];
    let compacted = false;
    for await (const rows of reportRows(bucket, id, { from: Date.parse(`${DAY}T00:00:00Z`), to: Date.parse(`${DAY}T00:00:00Z`) + 86_400_000 })) {
      got.push(...rows.map((r) => r[EVENT_COLUMNS.indexOf("event_id")] as string));
      if (!compacted) {
        compacted = true;
        // A slow consumer: before it asks for more, the night's compaction replaces 1-1, 2-2 and 3-3.
        await Promise.race([footer, new Promise((r) => setTimeout(r, 300))]);
        await compactPartition(env.LAKE, id, DAY);
      }
    }
    expect(got.sort()).toEqual(ids.sort());
  });

  it("a report download cancelled after its first chunk leaves the failures of the files opened ahead handled", async () => {
    const { id } = await createClient();
    const key = await ingestKey();
    for (let f = 0; f < 8; f++) {
      await postEvents([detailEvent(id, -(f + 10), { occurred_at: DAY1 - (f + 10) * 1_000 })], key);
      await flush(id);
    }
    let gets = 0;
    const failing = withMethods(env.LAKE, {
      get: ((k: string, o?: R2GetOptions) => (/part-[3-8]-/.test(k) ? (gets++, Promise.reject(new Error("R2 is down"))) : env.LAKE.get(k, o))) as R2Bucket["get"],
    });
    const stream = await reportStream(failing, id, { from: Date.parse(`${DAY}T00:00:00Z`), to: Date.parse(`${DAY}T00:00:00Z`) + 86_400_000 }, "csv", "epoch_ms");
    const reader = stream.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel();
    // Parts 3..5 were opened ahead and failed; nobody awaits them now.
    expect(gets).toBe(3);
    await new Promise((r) => setTimeout(r, 50));
  });
});
