import { effect } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { STATUSES } from "../../../schema/event.ts";
import type { ClientModel } from "../client-model.ts";
import { fmtInt, fmtTime, locale, t } from "../i18n.ts";
import { theme } from "../theme.ts";

const COLORS: Record<(typeof STATUSES)[number], string> = {
  accepted: "#94a3b8",
  sent: "#3b82f6",
  delivered: "#22c55e",
  read: "#a855f7",
  failed: "#ef4444",
};

/**
 * Per-minute bars stacked by status. uPlot has no stacking, so each series is drawn as the running
 * sum up to its status, later (lower) series painted over earlier (taller) ones; the legend shows the
 * raw count.
 */
export function StackedChart({ model }: { model: ClientModel }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = host.current!;
    const order = [...STATUSES].reverse();
    let plot: uPlot | null = null;
    let builtFor = "";
    let raw: number[][] = [];
    const stop = effect(() => {
      const { xs, ys } = model.series.value;
      // Labels and axis colours are baked in when the plot is built: rebuild on a locale or theme switch.
      const look = `${locale.value}|${theme.value}`;
      if (plot && builtFor !== look) {
        plot.destroy();
        plot = null;
      }
      builtFor = look;
      raw = order.map((s) => ys[STATUSES.indexOf(s)]!);
      const stacked = order.map((_, i) => xs.map((_, j) => raw.slice(i).reduce((sum, col) => sum + col[j]!, 0)));
      const data: uPlot.AlignedData = [xs, ...stacked];
      if (plot) return plot.setData(data);
      const axisColor = getComputedStyle(el).color;
      plot = new uPlot(
        {
          width: el.clientWidth || 800,
          height: 320,
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true } },
          axes: [
            { stroke: axisColor, values: (_u, splits) => splits.map((v) => fmtTime(v * 1000)), grid: { stroke: "rgba(127,127,127,.15)" } },
            { stroke: axisColor, values: (_u, splits) => splits.map((v) => fmtInt(v)), grid: { stroke: "rgba(127,127,127,.15)" } },
          ],
          series: [
            { label: t("client.time"), value: (_u, v) => (v == null ? "" : fmtTime(v * 1000)) },
            ...order.map((s, i) => ({
              label: t(`status.${s}`),
              fill: COLORS[s],
              stroke: COLORS[s],
              width: 0,
              paths: uPlot.paths.bars!({ size: [0.9, 40] }),
              value: (_u: uPlot, _v: number | null, _si: number, idx: number | null) => (idx == null ? "" : fmtInt(raw[i]![idx] ?? 0)),
            })),
          ],
        },
        data,
        el,
      );
      // The summary under the chart says in words what the legend only says on hover.
      plot.root.querySelector(".u-legend")?.setAttribute("aria-hidden", "true");
    });
    const ro = new ResizeObserver(() => plot?.setSize({ width: el.clientWidth, height: 320 }));
    ro.observe(el);
    return () => {
      stop();
      ro.disconnect();
      plot?.destroy();
    };
  }, [model]);
  // Bare axes read as a broken chart: once the stream has spoken, say that there is nothing to draw.
  const empty = model.today.value !== null && model.series.value.ys.every((col) => col.every((v) => v === 0));
  // The canvas is a picture: its text alternative is the period's totals and its busiest minute.
  return (
    <>
      <div class="chart" ref={host} role="figure" aria-labelledby="chart-title" aria-describedby="chart-summary" data-testid="client-chart" />
      <p id="chart-summary" class="sr-only">
        {chartSummary(model.series.value)}
      </p>
      {empty && <p class="note">{t("client.chartEmpty")}</p>}
    </>
  );
}

/** The chart in words: each status's total over the period, and the minute with the most notifications. */
function chartSummary({ xs, ys }: { xs: number[]; ys: number[][] }): string {
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
