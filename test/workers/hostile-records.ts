import fc from "fast-check";
import { BridgedEvent, CATEGORIES, EpochMs, PRICING_TYPES, STATUSES } from "../../schema/event.ts";

/** Generated records for the hostile-input and fast-path tests, drawn from the zod schemas in schema/. */

/** Strings that have broken parsers, SQL, CSV, terminals and file names elsewhere. */
export const hostileString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom(
    "\u0000",
    "a\u0000b",
    "😀👍🏽🇧🇷",
    "\u202Eevil\u202C",
    "مرحبا",
    "'; DROP TABLE ledger; --",
    '" OR 1=1 --',
    "../../etc/passwd",
    "=HYPERLINK(\"http://x\")",
    "\r\n,\"",
    "\uD800",
    "x".repeat(2_000),
  ),
);

/** A value nested `depth` levels deep, in objects and arrays. */
const nested = fc.integer({ min: 1, max: 200 }).map((depth) => {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { v };
  return v;
});

const DELETE = Symbol("delete");
export const hostileValue = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.constant(DELETE),
  fc.constantFrom(1e308, -1, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER, 0.5, -0, 1e21, EpochMs.maxValue! + 1, EpochMs.minValue! - 1),
  fc.constantFrom("deleted", "warning", "MARKETING", "premium", "regular ", "", "null", "true"),
  hostileString,
  nested,
);

/** A valid bridged event, every field drawn from the schema's own enums and bounds. */
export function validEvent(clientId: string, id: string) {
  return fc
    .record({
      status: fc.constantFrom(...STATUSES),
      occurred_at: fc.oneof(
        fc.integer({ min: EpochMs.minValue!, max: EpochMs.maxValue! }),
        fc.integer({ min: Date.UTC(2026, 10, 1), max: Date.UTC(2026, 10, 21) }).map((ms) => new Date(ms).toISOString()),
      ),
      recipient: fc.constantFrom("5511987654321", "+14155552671", "919876543210"),
      category: fc.option(fc.constantFrom(...CATEGORIES)),
      billable: fc.option(fc.boolean()),
      pricing_type: fc.option(fc.constantFrom(...PRICING_TYPES)),
      template: fc.option(hostileString.filter((s) => s.length <= 512)),
      error_code: fc.option(fc.integer()),
      error_title: fc.option(hostileString.filter((s) => s.length <= 1024)),
    })
    .map((r) => ({ event_id: id, message_id: id, client_id: clientId, ...r }) as Record<string, unknown>);
}

/** Zero to three fields of the event replaced by hostile values (or removed). */
export function mutated(event: fc.Arbitrary<Record<string, unknown>>) {
  const field = fc.constantFrom(...Object.keys(BridgedEvent.shape));
  return fc.tuple(event, fc.array(fc.tuple(field, hostileValue), { maxLength: 3 })).map(([e, changes]) => {
    const out: Record<string, unknown> = { ...e };
    for (const [k, v] of changes) {
      if (v === DELETE) delete out[k];
      else out[k] = v;
    }
    return out;
  });
}
