import { STATUSES } from "../../schema/event.ts";
import { fmtInt, fmtTime, t } from "./i18n.ts";

/**
 * The chart in words: each status's total over the period, and the minute with the most status
 * events (a message counts once per status it reached, so these are events, not notifications).
 */
export function chartSummary({ xs, ys }: { xs: number[]; ys: number[][] }): string {
  const counts = STATUSES.map((s, i) => `${fmtInt(ys[i]!.reduce((a, b) => a + b, 0))} ${t(`status.${s}`)}`).join(", ");
  let peak = -1;
  let peakTotal = 0;
  xs.forEach((_, j) => {
    const total = ys.reduce((sum, col) => sum + col[j]!, 0);
    if (total > peakTotal) [peak, peakTotal] = [j, total];
  });
  const summary = t("client.chartSummary", { counts });
  return peak < 0 ? summary : `${summary} ${t("client.chartPeak", { time: fmtTime(xs[peak]! * 1000), n: fmtInt(peakTotal) })}`;
}

/** Half a minute (in the chart's seconds) each side of the first and last minute, so their bars, centred on the minute, are drawn whole. */
export function chartXRange(min: number, max: number): [number, number] {
  return [min - 30, max + 30];
}
