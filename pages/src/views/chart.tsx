import { effect } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { STATUSES } from "../../../schema/event.ts";
import type { ClientModel } from "../client-model.ts";
import { chartSummary, chartXRange } from "../chart-summary.ts";
import { fmtInt, fmtTime, locale, t } from "../i18n.ts";
import { theme } from "../theme.ts";

/**
 * Each status's colour in the current theme: the page's own (`--accepted`, `--sent`, … in styles.css),
 * chosen to stand 3:1 against the chart's panel in both themes (WCAG 1.4.11) and apart from each other.
 */
function statusColors(el: Element): Record<(typeof STATUSES)[number], string> {
  const style = getComputedStyle(el);
  return Object.fromEntries(STATUSES.map((s) => [s, style.getPropertyValue(`--${s}`).trim()])) as Record<(typeof STATUSES)[number], string>;
}

/** A legend value: of the minute under the pointer, or of the latest minute when the pointer is elsewhere (blank labels read as missing data). */
function legendMinute(u: uPlot, idx: number | null, text: (i: number) => string): string {
  const i = idx ?? u.data[0].length - 1;
  return i < 0 ? "" : text(i);
}

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
      const colors = statusColors(el);
      plot = new uPlot(
        {
          width: el.clientWidth || 800,
          height: 320,
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true, range: (_u, min, max) => chartXRange(min, max) } },
          axes: [
            { stroke: axisColor, values: (_u, splits) => splits.map((v) => fmtTime(v * 1000)), grid: { stroke: "rgba(127,127,127,.15)" } },
            { stroke: axisColor, values: (_u, splits) => splits.map((v) => fmtInt(v)), grid: { stroke: "rgba(127,127,127,.15)" } },
          ],
          series: [
            { label: t("client.time"), value: (u, _v, _si, idx) => legendMinute(u, idx, (i) => fmtTime(u.data[0][i]! * 1000)) },
            ...order.map((s, i) => ({
              label: t(`status.${s}`),
              fill: colors[s],
              stroke: colors[s],
              width: 0,
              paths: uPlot.paths.bars!({ size: [0.9, 40] }),
              value: (u: uPlot, _v: number | null, _si: number, idx: number | null) => legendMinute(u, idx, (m) => fmtInt(raw[i]![m] ?? 0)),
            })),
          ],
        },
        data,
        el,
      );
      // The summary under the chart says in words what the legend says of one minute at a time.
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
