import { useEffect, useMemo } from "preact/hooks";
import { GRACE_MS, RECOMPUTE_DAYS, UNKNOWN_COUNTRY, type BillingFormat } from "../../../schema/billing.ts";
import { DAY_MS } from "../../../schema/time.ts";
import { api, postJson, saveFile } from "../api.ts";
import { BillingDayModel, BillingMonthModel, dayBefore } from "../billing-model.ts";
import { billingSheet } from "../billing-sheet.ts";
import { BROWSER_TIME_ZONE, categoryLabel, fmtDateTime, fmtInt, locale, localDateTime, t } from "../i18n.ts";
import { currentUser, runsBilling, seesBilling } from "../session.ts";
import { BillingLines } from "./billing-lines.tsx";
import { BillingMonth } from "./billing-month.tsx";
import { Failure } from "./failure.tsx";
import { SearchBox } from "./search-box.tsx";
import { Unavailable } from "./unavailable.tsx";

/** Billing for those who may see it; anyone else opening /billing is told so, not shown a form that fails. */
export function BillingPage() {
  // This month as the browser's calendar has it.
  const month = useMemo(() => new BillingMonthModel(api, localDateTime(Date.now()).slice(0, 7)), []);
  if (!seesBilling(currentUser.value!)) return <Unavailable title={t("billing.title")} message={t("billing.forbidden")} />;
  return (
    <>
      <Billing month={month} />
      <BillingMonth model={month} />
    </>
  );
}

/** A day's billing lines and its signed CSV/Parquet downloads (BillingDayModel); a day computed here is the month's news too. */
function Billing({ month }: { month: BillingMonthModel }) {
  const model = useMemo(() => new BillingDayModel(api, dayBefore(Date.now(), BROWSER_TIME_ZONE), postJson, (day) => month.refreshIfShowing(day)), [month]);
  // A later day has nothing to bill yet; the server takes no day that has not begun.
  const today = localDateTime(Date.now()).slice(0, 10);
  useEffect(() => {
    void model.load();
    return () => model.dispose();
  }, [model]);
  const { date, shown, lines, unpriced, revision, openClients, error } = model;
  async function download(format: BillingFormat) {
    const url = await model.fileLink(format);
    if (url) location.assign(url);
  }
  /** The lines on screen as a spreadsheet of the page's language (billing-sheet.ts). */
  function saveSheet() {
    if (!shown.value || !lines.value || !revision.value) return;
    const sheet = billingSheet(shown.value, revision.value, lines.value, locale.value, categoryLabel);
    saveFile(new Blob([sheet], { type: "text/csv;charset=utf-8" }), `zapmeter-${t("billing.sheetFile")}-${shown.value}-r${revision.value}.csv`);
  }

  return (
    <section class="billing" aria-labelledby="billing-title">
      <div class="page-head">
        <h1 id="billing-title">{t("billing.title")}</h1>
        <span class="muted" role="status" data-testid="billing-status">
          {shown.value !== null && `${t("billing.shownDay", { d: shown.value })} · `}
          {revision.value !== null && (revision.value === 0 ? t("billing.notComputed") : t("billing.revision", { r: revision.value }))}
          {model.computedAt.value !== null && ` · ${t("billing.computedAt", { when: fmtDateTime(model.computedAt.value) })}`}
        </span>
        {/* A busy day's lines run to hundreds: the month is one step away, not past them. */}
        <a class="to-month" href="#billing-month">
          {t("billing.toMonth")}
        </a>
      </div>
      <form class="filters" onSubmit={(e) => (e.preventDefault(), void model.load())}>
        <label>
          {t("billing.date")}{" "}
          <input
            type="date"
            value={date.value}
            onInput={(e) => (date.value = e.currentTarget.value)}
            // A day past today or a half-typed one loads nothing: the browser says why, and the lines stay those of the day named above.
            onChange={(e) => (e.currentTarget.checkValidity() ? model.loadSoon() : e.currentTarget.reportValidity())}
            max={today}
            required
          />
        </label>
        <button type="submit">{t("billing.load")}</button>
        {runsBilling(currentUser.value!) && (
          <button type="button" disabled={shown.value === null || model.loading.value || model.computing.value} onClick={() => void model.compute()}>
            {model.computing.value ? t("billing.computing") : revision.value ? t("billing.recompute") : t("billing.compute")}
          </button>
        )}
        <button type="button" disabled={!model.downloadable.value} onClick={() => void download("csv")}>
          {t("billing.download", { f: "CSV" })}
        </button>
        <button type="button" disabled={!model.downloadable.value} onClick={() => void download("parquet")}>
          {t("billing.download", { f: "Parquet" })}
        </button>
        <button type="button" disabled={!lines.value?.length || !revision.value} onClick={saveSheet}>
          {t("billing.sheet")}
        </button>
      </form>
      {model.loading.value && (
        <p class="muted" role="status">
          {t("billing.loading")}
        </p>
      )}
      {error.value != null && <Failure error={error.value} fields={{ date: t("billing.date") }} />}
      {lines.value && revision.value !== 0 && openClients.value > 0 && (
        <p class="notice" data-testid="billing-provisional">
          {t("billing.provisional", { n: fmtInt(openClients.value), grace: GRACE_HOURS })}
        </p>
      )}
      {lines.value?.length === 0 && <p class="empty">{t("billing.none")}</p>}
      <DueNote due={model.due.value} />
      {lines.value && lines.value.length > 0 && <FilteredLines model={model} />}
      {lines.value && unpriced.value.size > 0 && (
        <p class="notice" data-testid="billing-unpriced">
          {t("billing.unpriced", { n: fmtInt(unpriced.value.size) })}
        </p>
      )}
      {lines.value && lines.value.length > 0 && <p class="note">{t("billing.localDay")}</p>}
      {lines.value?.some((l) => l.country === UNKNOWN_COUNTRY) && <p class="note">{t("billing.unknownCountry")}</p>}
    </section>
  );
}

const GRACE_HOURS = GRACE_MS / 3_600_000;

/** When a day not computed yet will be, so finance knows whether to wait or to ask an admin. */
function DueNote({ due }: { due: { from: number; to: number } | null }) {
  if (due === null) return null;
  const when = due.from === due.to ? fmtDateTime(due.from) : `${fmtDateTime(due.from)} – ${fmtDateTime(due.to)}`;
  const vars = { tz: BROWSER_TIME_ZONE, when, grace: GRACE_HOURS, days: RECOMPUTE_DAYS };
  return (
    <p class="note" data-testid="billing-due">
      {t(due.to > Date.now() ? "billing.dueSoon" : due.to + RECOMPUTE_DAYS * DAY_MS > Date.now() ? "billing.duePast" : "billing.dueMissed", vars)}
    </p>
  );
}

/** The day's lines under a client filter (a day has a line per client, category and country: hundreds). */
function FilteredLines({ model }: { model: BillingDayModel }) {
  const all = model.lines.value?.length ?? 0;
  const shown = model.filtered.value;
  const filtering = model.filter.value.trim() !== "";
  return (
    <>
      <div class="filters">
        <SearchBox label={t("billing.filter")} text={model.filter} />
        <span class="count" role="status" data-testid="billing-count">
          {filtering && t("billing.filtered", { n: fmtInt(shown.length), m: fmtInt(all) })}
        </span>
      </div>
      {shown.length > 0 ? <BillingLines lines={shown} unpriced={model.unpriced.value} /> : <p class="empty">{t("billing.noMatch")}</p>}
    </>
  );
}
