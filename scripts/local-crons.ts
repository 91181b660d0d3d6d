import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./local-stack.ts";

/**
 * `wrangler dev` does not fire Cron Triggers by itself; `npm start` does, so the local stack bills
 * and compacts as a deployment would. Each minute, every cron of wrangler.toml that matches that UTC
 * minute is fired through wrangler's local trigger endpoint (`/cdn-cgi/local/scheduled`), with the
 * minute as its scheduled time.
 */
export function runLocalCrons(baseUrl: string, crons: Cron[], signal: AbortSignal, onFired: (cron: string, status: number) => void): void {
  const tick = () => {
    if (signal.aborted) return;
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    for (const cron of crons.filter((c) => c.matches(new Date(minute)))) {
      const url = `${baseUrl}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(cron.text)}&time=${minute}`;
      fetch(url, { signal }).then(
        (res) => onFired(cron.text, res.status),
        () => onFired(cron.text, 0),
      );
    }
    setTimeout(tick, minute + 60_000 - Date.now() + 1_000);
  };
  tick();
}

/** wrangler.toml's crons, parsed: one the local trigger cannot fire as Cloudflare would is refused here, before anything starts. */
export function localCrons(): Cron[] {
  return cronsOf(readFileSync(join(ROOT, "wrangler.toml"), "utf8")).map(parseCron);
}

/** The `crons = [...]` of wrangler.toml's `[triggers]`. */
export function cronsOf(toml: string): string[] {
  const list = toml.match(/^\[triggers\][^[]*?^crons\s*=\s*\[([^\]]*)\]/ms)?.[1];
  if (list === undefined) throw new Error("wrangler.toml has no [triggers] crons");
  return [...list.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

export interface Cron {
  text: string;
  /** Whether it fires at the minute `at` (UTC). */
  matches(at: Date): boolean;
}

/**
 * The five fields as Cloudflare Cron Triggers number them: months 1-12 or JAN-DEC, days of the week
 * 1-7 with 1 = Sunday (not cron's 0-6) or SUN-SAT.
 */
const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"] },
  { name: "day of week", min: 1, max: 7, names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] },
];

/**
 * Parses `text`: numbers or names, `*`, ranges `a-b`, steps `/n` and lists `a,b` in each field. What
 * else Cloudflare accepts (L, W, #) is refused with the reason, as are `?` and values out of range.
 * As in cron, when both day of month and day of week are restricted, either may match.
 */
export function parseCron(text: string): Cron {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`cron "${text}": not five fields`);
  const allowed = parts.map((part, i) => {
    try {
      return fieldValues(part, FIELDS[i]!);
    } catch (err) {
      throw new Error(`cron "${text}": ${(err as Error).message}; the local trigger supports numbers, names, *, a-b, /n and lists`);
    }
  });
  const [minute, hour, dom, month, dow] = allowed as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  const bothDays = parts[2] !== "*" && parts[4] !== "*";
  return {
    text,
    matches(at) {
      const onDom = dom.has(at.getUTCDate());
      const onDow = dow.has(at.getUTCDay() + 1);
      return minute.has(at.getUTCMinutes()) && hour.has(at.getUTCHours()) && month.has(at.getUTCMonth() + 1) && (bothDays ? onDom || onDow : onDom && onDow);
    },
  };
}

function fieldValues(field: string, { name, min, max, names }: (typeof FIELDS)[number]): Set<number> {
  const value = (token: string): number => {
    const byName = names?.indexOf(token.toUpperCase()) ?? -1;
    const n = byName >= 0 ? min + byName : /^\d+$/.test(token) ? Number(token) : NaN;
    if (!(n >= min && n <= max)) throw new Error(`${name} "${field}" is not supported (${min}-${max}${names ? ` or ${names[0]}-${names.at(-1)}` : ""})`);
    return n;
  };
  const values = new Set<number>();
  for (const term of field.split(",")) {
    const [range, stepText, extra] = term.split("/");
    if (extra !== undefined || (stepText !== undefined && !/^[1-9]\d*$/.test(stepText))) throw new Error(`${name} "${field}" has an unsupported step`);
    const bounds = range === "*" ? [min, max] : range!.split("-").map(value);
    if (bounds.length > 2) throw new Error(`${name} "${field}" is not supported`);
    const from = bounds[0]!;
    const to = bounds[1] ?? (stepText === undefined ? from : max);
    if (from > to) throw new Error(`${name} "${field}" runs backwards`);
    for (let v = from; v <= to; v += Number(stepText ?? 1)) values.add(v);
  }
  return values;
}
