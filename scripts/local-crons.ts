import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./local-stack.ts";

/**
 * `wrangler dev` does not fire Cron Triggers by itself; `npm start` does, so the local stack bills
 * and compacts as a deployment would. Each minute, every cron of wrangler.toml that matches that UTC
 * minute is fired through wrangler's local trigger endpoint (`/cdn-cgi/local/scheduled`), with the
 * minute as its scheduled time.
 */
export function runLocalCrons(baseUrl: string, signal: AbortSignal, onFired: (cron: string, status: number) => void): void {
  const crons = cronsOf(readFileSync(join(ROOT, "wrangler.toml"), "utf8"));
  const tick = () => {
    if (signal.aborted) return;
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    for (const cron of crons.filter((c) => cronMatches(c, new Date(minute)))) {
      const url = `${baseUrl}/cdn-cgi/local/scheduled?cron=${encodeURIComponent(cron)}&time=${minute}`;
      fetch(url, { signal }).then(
        (res) => onFired(cron, res.status),
        () => onFired(cron, 0),
      );
    }
    setTimeout(tick, minute + 60_000 - Date.now() + 1_000);
  };
  tick();
}

/** The `crons = [...]` of wrangler.toml's `[triggers]`. */
export function cronsOf(toml: string): string[] {
  const list = toml.match(/^\[triggers\][^[]*?^crons\s*=\s*\[([^\]]*)\]/ms)?.[1];
  if (list === undefined) throw new Error("wrangler.toml has no [triggers] crons");
  return [...list.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
}

/** Field bounds of a five-field cron expression: minute, hour, day of month, month, day of week. */
const FIELDS: [min: number, max: number][] = [[0, 59], [0, 23], [1, 31], [1, 12], [0, 6]];

/**
 * Whether `cron` (numbers, `*`, ranges `a-b`, steps `/n`, lists `a,b`; no names) fires at `at` (UTC).
 * As in cron, when both day of month and day of week are restricted, either may match.
 */
export function cronMatches(cron: string, at: Date): boolean {
  const parts = cron.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`not a five-field cron: ${cron}`);
  const values = [at.getUTCMinutes(), at.getUTCHours(), at.getUTCDate(), at.getUTCMonth() + 1, at.getUTCDay()];
  const hits = parts.map((p, i) => fieldMatches(p, values[i]!, FIELDS[i]!));
  const [minute, hour, dom, month, dow] = hits;
  const day = parts[2] !== "*" && parts[4] !== "*" ? dom || dow : dom && dow;
  return Boolean(minute && hour && month && day);
}

function fieldMatches(field: string, value: number, [min, max]: [number, number]): boolean {
  return field.split(",").some((term) => {
    const [range, stepText] = term.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    const [from, to] = range === "*" ? [min, max] : range!.includes("-") ? range!.split("-").map(Number) : [Number(range), stepText === undefined ? Number(range) : max];
    if (![step, from, to].every(Number.isInteger) || step < 1) throw new Error(`unsupported cron field: ${field}`);
    return value >= from! && value <= to! && (value - from!) % step === 0;
  });
}
