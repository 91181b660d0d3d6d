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

/**
 * What an enum value of Meta's looks like (`marketing_lite`, `free_entry_point`). Only such a value is
 * logged: the field comes from outside, and a log line must never carry a phone number or other
 * personal data, so a value with a run of digits, spaces or symbols is logged by its length alone.
 */
const ENUM_TOKEN = /^[a-z][a-z0-9_]{0,63}$/i;
const DIGIT_RUN = /\d{5}/;

export function logUnlistedPricing(c: Context<AppEnv>, found: readonly UnlistedPricing[]): void {
  for (const { field, value } of found) {
    const token = ENUM_TOKEN.test(value) && !DIGIT_RUN.test(value);
    const key = token ? `${field}:${value}` : `${field}:`;
    if (named.has(key) || named.size >= NAMED_MAX) continue;
    named.add(key);
    log("warn", c, "webhook_unlisted_pricing", token ? { field, value } : { field, value: null, value_chars: value.length });
  }
}
