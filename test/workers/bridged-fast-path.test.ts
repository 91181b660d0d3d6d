import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BridgedEvent, EpochMs, ErrorCode } from "../../schema/event.ts";
import { compileObject, UncompilableSchema } from "../../workers/ingest/compiled-schema.ts";
import { hostileValue, mutated, validEvent } from "./hostile-records.ts";

/**
 * The bridge validates records through a fast path compiled from BridgedEvent (compiled-schema.ts)
 * and asks zod about the rest. The fast path must never accept what zod rejects nor change what zod
 * outputs; these tests hold it to zod itself, in workerd, where zod runs without its JIT as in
 * production.
 */

const accept = compileObject(BridgedEvent);

/** The fast path's verdict next to zod's: undefined, or exactly zod's output, key for key. */
function expectAgreesWithZod(record: unknown): "fast" | "zod" {
  const fast = accept(record);
  const parsed = BridgedEvent.safeParse(record);
  if (fast === undefined) return "zod";
  expect(parsed.success, JSON.stringify(record)).toBe(true);
  expect(fast).toStrictEqual(parsed.data);
  expect(Object.keys(fast)).toEqual(Object.keys(parsed.data!));
  return "fast";
}

/** Strings and numbers at and around every bound in the schema, in one- and two-unit characters. */
const LENGTHS = [0, 1, 2, 3, 6, 15, 16, 63, 64, 65, 128, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025];
const boundaryValue = fc.oneof(
  fc.constantFrom(...LENGTHS).chain((n) => fc.constantFrom("x".repeat(n), "7".repeat(n), `+${"7".repeat(n)}`, "😀".repeat(n), `${"😀".repeat(n)}x`, "B".repeat(n))),
  fc.constantFrom(
    ...[EpochMs, ErrorCode].flatMap((n) => [n.minValue! - 1, n.minValue!, n.maxValue!, n.maxValue! + 1]),
    2 ** 53 - 1, 2 ** 53, 0.5, -0, 0,
  ),
);
const boundaryRecord = fc
  .tuple(validEvent("client-1", "wamid.3"), fc.constantFrom(...Object.keys(BridgedEvent.shape)), boundaryValue)
  .map(([r, field, value]) => ({ ...r, [field]: value }));

/** A record as the bridge sees it: after a JSON round trip. */
const wire = (r: unknown): unknown => JSON.parse(JSON.stringify(r) ?? "null");

describe("BridgedEvent's compiled fast path", () => {
  it("accepts only records zod accepts, with zod's output, for valid, mutated and arbitrary records", () => {
    const paths = { fast: 0, zod: 0 };
    const record = fc.oneof(validEvent("client-1", "wamid.1"), mutated(validEvent("client-1", "wamid.2")), boundaryRecord, hostileValue, fc.anything());
    fc.assert(
      fc.property(record, (r) => {
        paths[expectAgreesWithZod(r)] += 1;
        paths[expectAgreesWithZod(wire(r))] += 1;
      }),
      { numRuns: 5_000 },
    );
    // Not a vacuous pass: a good share of the records took the fast path.
    expect(paths.fast).toBeGreaterThan(1_000);
  });

  it("takes the fast path for every well-formed record with epoch-millisecond times", () => {
    fc.assert(
      fc.property(validEvent("client-1", "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ1"), (r) => {
        fc.pre(typeof r.occurred_at === "number");
        expect(expectAgreesWithZod(wire(r))).toBe("fast");
      }),
      { numRuns: 500 },
    );
  });

  it("leaves to zod what it cannot vouch for, and zod still accepts it", () => {
    const base = { event_id: "e-1", message_id: "m-1", client_id: "client-1", status: "sent", occurred_at: 1_764_000_000_000, recipient: "5511987654321" };
    const zodOnly = [
      // ISO-8601 times: the union's second option.
      { ...base, occurred_at: "2026-11-30T01:00:00.000Z" },
      // One UTF-16 unit: within twice the minimum length, where zod counts code points.
      { ...base, event_id: "e" },
      // 300 UTF-16 units but 150 code points: over the maximum in units, within it in code points.
      { ...base, message_id: "😀".repeat(150) },
    ];
    for (const r of zodOnly) {
      expect(accept(r)).toBeUndefined();
      expect(BridgedEvent.safeParse(r).success).toBe(true);
    }
    expect(expectAgreesWithZod(base)).toBe("fast");
    expect(expectAgreesWithZod({ ...base, recipient: "+5511987654321", extra: { nested: true } })).toBe("fast");
  });

  it("refuses at compile time the schema kinds and checks it does not know", () => {
    expect(() => compileObject(z.object({ id: z.string().trim() }))).toThrow(UncompilableSchema);
    expect(() => compileObject(z.object({ id: z.email() }))).toThrow(UncompilableSchema);
    expect(() => compileObject(z.object({ id: z.string().optional() }))).toThrow(UncompilableSchema);
    expect(() => compileObject(z.object({ n: z.number().multipleOf(5) }))).toThrow(UncompilableSchema);
    expect(() => compileObject(z.strictObject({ id: z.string() }))).toThrow(UncompilableSchema);
    expect(() => compileObject(z.object({ at: z.date() }))).toThrow(/at: a date schema/);
  });
});
