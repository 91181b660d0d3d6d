import { useEffect } from "preact/hooks";
import { navigate } from "../router.ts";
import type { OverviewRow } from "../../../schema/live.ts";
import { fmtInt, fmtPct, t } from "../i18n.ts";
import { overview as model, type SortKey } from "../overview-model.ts";
import { deliveryRate, readRate } from "../rates.ts";
import { rowWindow, useScrollBox } from "../row-window.ts";
import { LivePageHead } from "./header.tsx";
import { SearchBox } from "./search-box.tsx";
import { Sparkline } from "./sparkline.tsx";

const ROW_HEIGHT = 36;
const WINDOWS = ["minute", "hour", "today"] as const;
const SHOWN = ["sent", "delivered", "read", "failed"] as const;
/** Name, 4 statuses × 3 windows, 2 rates, the trend. */
const COLUMNS = 1 + WINDOWS.length * SHOWN.length + 2 + 1;

export function OverviewPage() {
  useEffect(() => {
    model.connection.start();
    return () => {
      model.connection.stop();
      // Left by a click on a row: no focus-out or pointer-leave follows, and the next visit starts in the live order.
      model.hold.clear();
    };
  }, []);
  return (
    <section class="overview" aria-labelledby="overview-title">
      <LivePageHead titleId="overview-title" connection={model.connection} status={model.badge.value}>
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
  const box = useScrollBox<HTMLDivElement>();
  return (
    <>
      <div class="filters">
        <SearchBox label={t("overview.search")} text={model.search} />
        <button type="button" aria-pressed={model.paused.value !== null} disabled={!loaded} onClick={() => model.togglePause()} data-testid="overview-pause">
          {model.paused.value ? t("overview.resume") : t("overview.pause")}
        </button>
        <span class="count" data-testid={loaded ? "client-count" : undefined} role="status">
          {loaded && (rows.length === 1 ? t("overview.oneClient") : t("overview.clients", { n: fmtInt(rows.length) }))}
          {model.paused.value && ` · ${t("overview.pausedNote")}`}
        </span>
      </div>
      {!loaded && (
        <p class="empty" role="status" data-testid="overview-loading">
          {t("overview.loading")}
        </p>
      )}
      {loaded && rows.length === 0 && <p class="empty">{model.rows.value.size === 0 ? t("overview.noClients") : t("overview.empty")}</p>}
      <div
        class={`grid${stale && loaded ? " stale" : ""}`}
        role="table"
        aria-label={t("overview.title")}
        aria-rowcount={rows.length + 2}
        aria-colcount={COLUMNS}
        aria-busy={!loaded}
        ref={box.ref}
        onScroll={box.onScroll}
      >
        <HeaderRows />
        <VirtualBody rows={model.shown.value} scrollTop={box.scrollTop.value} height={box.height.value} />
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
      <button type="button" class={`sort${active ? " active" : ""}`} title={title} aria-label={title} onClick={() => model.setSort(k)}>
        <span class="label">{label}</span>
        {active && (
          <span class="arrow" aria-hidden="true">
            {dir === 1 ? "▲" : "▼"}
          </span>
        )}
      </button>
    </div>
  );
}

function HeaderRows() {
  return (
    <div class="grid-head" role="rowgroup">
      <div class="row groups" role="row" aria-rowindex={1}>
        <div role="cell" class="c-name" />
        {WINDOWS.map((w) => (
          <div role="columnheader" class="group span-4" aria-colspan={SHOWN.length} key={w}>
            {t(`col.${w}`)} {w === "today" && <small>{t("col.todayZone")}</small>}
          </div>
        ))}
        <div role="columnheader" class="group span-2" aria-colspan={2}>
          {t("col.rates")}
        </div>
        <div role="cell" />
      </div>
      <div class="row" role="row" aria-rowindex={2}>
        <SortHeader cls="c-name" k="name" label={t("col.client")} />
        {WINDOWS.map((w) =>
          SHOWN.map((s) => (
            <SortHeader cls="num" key={`${w}.${s}`} k={`${w}.${s}`} label={t(`status.${s}`)} title={`${t(`col.${w}`)} · ${t(`status.${s}`)}`} />
          )),
        )}
        <SortHeader cls="num" k="deliveryRate" label={t("col.deliveryRate")} title={`${t("col.rates")} · ${t("col.deliveryRate")}: ${t("rate.deliveryHint")}`} />
        <SortHeader cls="num" k="readRate" label={t("col.readRate")} title={`${t("col.rates")} · ${t("col.readRate")}: ${t("rate.readHint")}`} />
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
function VirtualBody({ rows, scrollTop, height }: { rows: OverviewRow[]; scrollTop: number; height: number }) {
  const { first, last } = rowWindow(rows.length, ROW_HEIGHT, scrollTop, height);
  return (
    <div
      class="grid-body"
      role="rowgroup"
      onFocusIn={() => model.holdOrder("focus")}
      onFocusOut={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) model.releaseOrder("focus");
      }}
      onPointerEnter={() => model.holdOrder("pointer")}
      onPointerLeave={() => model.releaseOrder("pointer")}
    >
      <div style={{ height: `${rows.length * ROW_HEIGHT}px`, position: "relative" }}>
        {rows.slice(first, last).map((r, i) => (
          <Row key={r.client_id} row={r} index={first + i} />
        ))}
      </div>
    </div>
  );
}

/**
 * A client's row. The link is the name (a row cannot be a link and stay a row for screen readers); a
 * click anywhere else on the row opens the client too.
 */
function Row({ row, index }: { row: OverviewRow; index: number }) {
  const href = `/clients/${encodeURIComponent(row.client_id)}`;
  return (
    <div
      class="row"
      role="row"
      aria-rowindex={index + 3}
      style={{ top: `${index * ROW_HEIGHT}px` }}
      data-client={row.client_id}
      onClick={(e) => {
        if (!(e.target as Element).closest("a") && !getSelection()?.toString()) navigate(href);
      }}
    >
      <span role="rowheader" class="c-name">
        {/* The column is narrow and cuts a long name or id short: the whole of both on hover. */}
        <a href={href} title={`${row.name} (${row.client_id})`}>
          <strong>{row.name}</strong> <small>{row.client_id}</small>
        </a>
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
        {row.spark && <Sparkline values={row.spark} label={t("overview.trendLabel", { n: fmtInt(row.hour.sent) })} />}
      </span>
    </div>
  );
}
