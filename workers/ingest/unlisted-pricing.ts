import type { Context } from "hono";
import type { AppEnv } from "../app-env.ts";
import { log } from "../errors.ts";

/**
 * A pricing category or type a webhook carried that schema/event.ts does not list: one Meta added.
 * Its statuses still count and bill (as category `unknown`, or by `billable` for a type), so nothing
 * is lost, but the value itself would be, and it is what an operator needs to add to the enum.
 */
export interface UnlistedPricing {
  field: "category" | "pricing_type";
  value: string;
}

/**
 * Values this isolate has named already. A new category arrives on most statuses from the day Meta
 * ships it: one line per value per isolate is enough to find it and keeps the log from repeating it
 * thousands of times a second. Bounded, as the values come from outside.
 */
const named = new Set<string>();
const NAMED_MAX = 64;
const VALUE_MAX_CHARS = 64;

export function logUnlistedPricing(c: Context<AppEnv>, found: readonly UnlistedPricing[]): void {
  for (const { field, value } of found) {
    const key = `${field}:${value}`;
    if (named.has(key) || named.size >= NAMED_MAX) continue;
    named.add(key);
    log("warn", c, "webhook_unlisted_pricing", { field, value: value.slice(0, VALUE_MAX_CHARS) });
  }
}
