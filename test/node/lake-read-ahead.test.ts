import { describe, expect, it } from "vitest";
import type { Part } from "../../workers/lake/layout.ts";
import { READ_AHEAD_BYTES, READ_AHEAD_FILES, readAhead } from "../../workers/lake/read-ahead.ts";

const MiB = 1 << 20;

function parts(sizes: number[]): Part[] {
  return sizes.map((size, i) => ({ key: `part-${i + 1}-${i + 1}.parquet`, first: i + 1, last: i + 1, size }));
}

/** Reads `files` through readAhead, noting how many opens had started while the caller held each part. */
async function startedWhileHeld(files: Part[]): Promise<{ order: string[]; started: number[] }> {
  const opened: string[] = [];
  const order: string[] = [];
  const started: number[] = [];
  for await (const { part, opened: open } of readAhead(files, async (p) => (opened.push(p.key), p.key))) {
    order.push(await open);
    started.push(opened.length);
    expect(part.key).toBe(order.at(-1));
  }
  return { order, started };
}

describe("reading lake files ahead", () => {
  it("hands the parts back in order, each already opened, with up to five opens started, the part being read among them", async () => {
    const files = parts(Array(10).fill(4_000));
    const { order, started } = await startedWhileHeld(files);
    expect(order).toEqual(files.map((p) => p.key));
    expect(READ_AHEAD_FILES).toBe(5);
    // While the caller reads part i, parts i..i+4 are open or opening (fewer near the end).
    expect(started).toEqual([5, 6, 7, 8, 9, 10, 10, 10, 10, 10]);
  });

  it("keeps opened files to 16 MiB held, the part being read among them, yet always opens the next one", async () => {
    expect(READ_AHEAD_BYTES).toBe(16 * MiB);
    // Three 5 MiB files fit, a fourth would not.
    expect((await startedWhileHeld(parts([5, 5, 5, 5, 5].map((m) => m * MiB)))).started).toEqual([3, 4, 5, 5, 5]);
    // An 8 MiB file (the largest read whole) and one of 7.5 MiB leave room for a file over 8 MiB,
    // read by ranges, which holds its footer's fetch (512 KiB), and none for a 1-byte one.
    expect((await startedWhileHeld(parts([8 * MiB, 7.5 * MiB, 9 * MiB, 1]))).started).toEqual([3, 4, 4, 4]);
  });

  it("throws an open's failure where its part comes, and leaves the failures of parts never reached handled", async () => {
    const files = parts([1, 1, 1, 1]);
    const open = async (p: Part) => {
      if (p.first >= 2) throw new Error(`cannot read ${p.key}`);
      return p.key;
    };
    const read: string[] = [];
    const reading = (async () => {
      for await (const { opened } of readAhead(files, open)) read.push(await opened);
    })();
    await expect(reading).rejects.toThrow("cannot read part-2-2.parquet");
    expect(read).toEqual(["part-1-1.parquet"]);
    // Parts 3 and 4 failed too, unawaited: an unhandled rejection would fail this file's run.
    await new Promise((r) => setTimeout(r, 10));
  });

  it("hands the parts back in list order when later opens finish first", async () => {
    const files = parts([1, 1, 1, 1, 1]);
    const delays = [40, 0, 20, 0, 10];
    const order: string[] = [];
    const open = (p: Part) => new Promise<string>((r) => setTimeout(() => r(p.key), delays[p.first - 1]));
    for await (const { part, opened } of readAhead(files, open)) {
      order.push(await opened);
      expect(part.key).toBe(order.at(-1));
    }
    expect(order).toEqual(files.map((p) => p.key));
  });

  it("throws the first part's failure in list order though a later part failed sooner", async () => {
    const files = parts([1, 1, 1]);
    const open = (p: Part) =>
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`cannot read ${p.key}`)), p.first === 1 ? 30 : 0));
    const reading = (async () => {
      for await (const { opened } of readAhead(files, open)) await opened;
    })();
    await expect(reading).rejects.toThrow("cannot read part-1-1.parquet");
  });
});
