import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import type { OverviewRow } from "../../../schema/live.ts";
import { fmtInt, fmtPct, t } from "../i18n.ts";
import { overview as model, type SortKey } from "../overview-model.ts";
import { deliveryRate, readRate } from "../rates.ts";
import { LivePageHead } from "./header.tsx";
import { Sparkline } from "./sparkline.tsx";

const ROW_HEIGHT = 36;
/** Rows rendered beyond the visible ones, so fast scrolling shows no gaps. */
const OVERSCAN = 8;
const WINDOWS = ["minute", "hour", "today"] as const;
const SHOWN = ["sent", "delivered", "read", "failed"] as const;

export function OverviewPage() {
  useEffect(() => {
    model.connection.start();
    return () => model.connection.stop();
  }, []);
  return (
    <section class="overview" aria-labelledby="overview-title">
      <LivePageHead titleId="overview-title" connection={model.connection}>
        {t("overview.title")}
      </LivePageHead>
      {!model.connection.refusal.value && (
        <OverviewTable rows={model.visible.value} loaded={model.loaded.value} stale={model.connection.status.value !== "live"} />
      )}
    </section>
  );
}

/**
 * One scroll container for both directions, so the header stays on top and the client's name at the
 * left while the numbers scroll under them (a phone shows a few columns at a time). While the stream
 * is down the numbers are dimmed: they are the last ones heard, not the current ones.
 */
function OverviewTable({ rows, loaded, stale }: { rows: OverviewRow[]; loaded: boolean; stale: boolean }) {
  const scrollTop = useSignal(0);
  const height = useSignal(600);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current!;
    const ro = new ResizeObserver(() => (height.value = el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return (
    <>
      <div class="filters">
        <input
          type="search"
          placeholder={t("overview.search")}
          aria-label={t("overview.search")}
          value={model.search.value}
          onInput={(e) => (model.search.value = e.currentTarget.value)}
        />
        {loaded && (
          <span class="count" data-testid="client-count">
            {rows.length === 1 ? t("overview.oneClient") : t("overview.clients", { n: fmtInt(rows.length) })}
          </span>
        )}
      </div>
      <div
        class={`grid${stale && loaded ? " stale" : ""}`}
        role="table"
        aria-label={t("overview.title")}
        aria-rowcount={rows.length + 2}
        aria-busy={!loaded}
        ref={ref}
        onScroll={(e) => (scrollTop.value = e.currentTarget.scrollTop)}
      >
        <HeaderRows />
        <VirtualBody rows={rows} loaded={loaded} scrollTop={scrollTop.value} height={height.value} />
      </div>
    </>
  );
}

/** A sortable column's header: `aria-sort` belongs on the header cell, where screen readers read it. */
function SortHeader({ k, label, title, cls }: { k: SortKey; label: string; title?: string; cls: string }) {
  const { key, dir } = model.sort.value;
  const active = key === k;
  return (
    <div role="columnheader" class={cls} aria-sort={active ? (dir === 1 ? "ascending" : "descending") : "none"}>
      <button type="button" class={`sort${active ? " active" : ""}`} title={title} onClick={() => model.setSort(k)}>
        {label}
        <span aria-hidden="true">{active ? (dir === 1 ? " ▲" : " ▼") : ""}</span>
      </button>
    </div>
  );
}

function HeaderRows() {
  return (
    <div class="grid-head" role="rowgroup">
      <div class="row groups" role="row">
        <div role="columnheader" class="c-name" />
        {WINDOWS.map((w) => (
          <div role="columnheader" class="group span-4" key={w}>
            {t(`col.${w}`)} {w === "today" && <small>{t("col.todayZone")}</small>}
          </div>
        ))}
        <div role="columnheader" class="group span-2">
          {t("col.rates")}
        </div>
        <div role="columnheader" />
      </div>
      <div class="row" role="row">
        <SortHeader cls="c-name" k="name" label={t("col.client")} />
        {WINDOWS.map((w) =>
          SHOWN.map((s) => (
            <SortHeader cls="num" key={`${w}.${s}`} k={`${w}.${s}`} label={t(`status.${s}`)} title={`${t(`col.${w}`)} · ${t(`status.${s}`)}`} />
          )),
        )}
        <SortHeader cls="num" k="deliveryRate" label={t("col.deliveryRate")} title={t("rate.deliveryHint")} />
        <SortHeader cls="num" k="readRate" label={t("col.readRate")} title={t("rate.readHint")} />
        <div role="columnheader" class="c-spark">
          {t("col.trend")}
        </div>
      </div>
    </div>
  );
}

/**
 * Renders only the rows in view of the table's scroll box (`scrollTop`, `height`; the header's two
 * rows are within the overscan): 10,000 clients cost as much as the ~30 on screen.
 */
function VirtualBody({ rows, loaded, scrollTop, height }: { rows: OverviewRow[]; loaded: boolean; scrollTop: number; height: number }) {
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  return (
    <div class="grid-body" role="rowgroup">
      {!loaded && (
        <p class="empty" role="status" data-testid="overview-loading">
          {t("overview.loading")}
        </p>
      )}
      {loaded && rows.length === 0 && <p class="empty">{model.rows.value.size === 0 ? t("overview.noClients") : t("overview.empty")}</p>}
      <div style={{ height: `${rows.length * ROW_HEIGHT}px`, position: "relative" }}>
        {rows.slice(first, last).map((r, i) => (
          <Row key={r.client_id} row={r} index={first + i} />
        ))}
      </div>
    </div>
  );
}

function Row({ row, index }: { row: OverviewRow; index: number }) {
  return (
    <a
      class="row"
      role="row"
      aria-rowindex={index + 3}
      href={`/clients/${encodeURIComponent(row.client_id)}`}
      style={{ top: `${index * ROW_HEIGHT}px` }}
      data-client={row.client_id}
    >
      <span role="cell" class="c-name">
        <strong>{row.name}</strong> <small>{row.client_id}</small>
      </span>
      {WINDOWS.map((w) =>
        SHOWN.map((s) => (
          <span role="cell" class={`num s-${s}${row[w][s] === 0 ? " zero" : ""}`} key={`${w}.${s}`} data-cell={`${w}.${s}`}>
            {fmtInt(row[w][s])}
          </span>
        )),
      )}
      <span role="cell" class="num">
        {fmtPct(deliveryRate(row.today))}
      </span>
      <span role="cell" class="num">
        {fmtPct(readRate(row.today))}
      </span>
      <span role="cell" class="c-spark">
        {row.spark && <Sparkline values={row.spark} label={`${t("col.trend")}: ${fmtInt(row.hour.sent)} ${t("status.sent")}`} />}
      </span>
    </a>
  );
}
