import { useSignal } from "@preact/signals";
import { useEffect, useRef } from "preact/hooks";
import { UNKNOWN_COUNTRY, totalsByCurrency, type BillingLine, type BillingResponse } from "../../../schema/billing.ts";
import { api } from "../api.ts";
import { categoryLabel, fmtInt, fmtMoney, localDateTime, t } from "../i18n.ts";
import { currentUser, seesBilling } from "../session.ts";
import { BillingMonth } from "./billing-month.tsx";
import { Failure } from "./failure.tsx";
import { Unavailable } from "./unavailable.tsx";

const CHANGE_SETTLE_MS = 400;

const lineKey = (l: { client_id: string; category: string; country: string }) => `${l.client_id}|${l.category}|${l.country}`;

/** Billing for those who may see it; anyone else opening /billing is told so, not shown a form that fails. */
export function BillingPage() {
  if (!seesBilling(currentUser.value!)) return <Unavailable title={t("billing.title")} message={t("billing.forbidden")} />;
  return (
    <>
      <Billing />
      <BillingMonth />
    </>
  );
}

/**
 * A day's billing lines (GET /v1/billing) and its signed CSV/Parquet downloads. The lines, the
 * revision, the downloads and any "not computed" message are always of one day, the one shown: a new
 * date clears the old day's lines, and an answer for a date asked before the latest is dropped.
 */
function Billing() {
  // Yesterday as the browser's calendar has it: the day a person at this desk last closed.
  const date = useSignal(localDateTime(Date.now() - 86_400_000).slice(0, 10));
  /** The day whose lines are shown (or loading). */
  const shown = useSignal<string | null>(null);
  const lines = useSignal<BillingLine[] | null>(null);
  /** The shown lines no rate card prices (billed at 0), by lineKey. */
  const unpriced = useSignal<ReadonlySet<string>>(new Set());
  const revision = useSignal<number | null>(null);
  const openClients = useSignal(0);
  const error = useSignal<unknown>(null);
  const asked = useRef(0);
  const pendingChange = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  async function load() {
    clearTimeout(pendingChange.current);
    const ask = ++asked.current;
    const day = date.value;
    shown.value = day;
    lines.value = null;
    revision.value = null;
    error.value = null;
    try {
      const res = await api<BillingResponse>(`/v1/billing?date=${day}`);
      if (ask !== asked.current) return;
      lines.value = res.lines;
      unpriced.value = new Set(res.unpriced.map(lineKey));
      revision.value = res.revision;
      openClients.value = res.open_clients;
    } catch (err) {
      if (ask === asked.current) error.value = err;
    }
  }
  async function fileOf(format: "csv" | "parquet") {
    const day = shown.value;
    if (day === null) return;
    try {
      const { url } = await api<{ url: string }>(`/v1/billing/${day}/download?format=${format}`);
      location.assign(url);
    } catch (err) {
      if (day === shown.value) error.value = err;
    }
  }
  /**
   * A picked date loads once the field settles: stepping through days with the arrow keys fires a
   * change per key, and each load would announce "loading" and clear the table. Enter loads now.
   */
  function loadSoon() {
    clearTimeout(pendingChange.current);
    pendingChange.current = setTimeout(() => void load(), CHANGE_SETTLE_MS);
  }
  useEffect(() => {
    void load();
    return () => clearTimeout(pendingChange.current);
  }, []);
  const loading = shown.value !== null && lines.value === null && error.value == null;

  return (
    <section class="billing" aria-labelledby="billing-title">
      <div class="page-head">
        <h1 id="billing-title">{t("billing.title")}</h1>
        <span class="muted" role="status">
          {revision.value !== null && (revision.value === 0 ? t("billing.notComputed") : t("billing.revision", { r: revision.value }))}
        </span>
      </div>
      <form class="filters" onSubmit={(e) => (e.preventDefault(), void load())}>
        <label>
          {t("billing.date")}{" "}
          <input
            type="date"
            value={date.value}
            onInput={(e) => (date.value = e.currentTarget.value)}
            onChange={(e) => e.currentTarget.checkValidity() && loadSoon()}
            required
          />
        </label>
        <button type="submit">{t("billing.load")}</button>
        <button type="button" disabled={shown.value === null} onClick={() => void fileOf("csv")}>
          {t("billing.download", { f: "CSV" })}
        </button>
        <button type="button" disabled={shown.value === null} onClick={() => void fileOf("parquet")}>
          {t("billing.download", { f: "Parquet" })}
        </button>
      </form>
      {loading && (
        <p class="muted" role="status">
          {t("billing.loading")}
        </p>
      )}
      {error.value != null && <Failure error={error.value} fields={{ date: t("billing.date") }} />}
      {lines.value && revision.value !== 0 && openClients.value > 0 && (
        <p class="notice" data-testid="billing-provisional">
          {t("billing.provisional", { n: fmtInt(openClients.value) })}
        </p>
      )}
      {lines.value?.length === 0 && <p class="empty">{t("billing.none")}</p>}
      {lines.value && lines.value.length > 0 && (
        <div class="table-scroll" role="region" aria-label={t("table.region", { name: t("billing.title") })} tabIndex={0}>
        <table class="lines sticky-first" aria-labelledby="billing-title">
          <thead>
            <tr>
              <th scope="col">{t("col.client")}</th>
              <th scope="col">{t("billing.category")}</th>
              <th scope="col">{t("billing.country")}</th>
              <th scope="col" class="num">{t("billing.count")}</th>
              <th scope="col" class="num">{t("billing.unit")}</th>
              <th scope="col" class="num">{t("billing.amount")}</th>
            </tr>
          </thead>
          <tbody>
            {lines.value.map((l) => (
              <tr key={lineKey(l)} data-unpriced={unpriced.value.has(lineKey(l)) || undefined}>
                <td>{l.client_name}</td>
                <td>{categoryLabel(l.category)}</td>
                <td>{l.country}</td>
                <td class="num">{fmtInt(l.billable_count)}</td>
                <td class="num">{unpriced.value.has(lineKey(l)) ? <em class="muted">{t("billing.noRate")}</em> : fmtMoney(l.unit_price_micros, l.currency)}</td>
                <td class="num">{fmtMoney(l.amount_micros, l.currency)}</td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            {totalsByCurrency(lines.value).map((total) => (
              <tr key={total.currency} data-testid="billing-total">
                <th scope="row" colSpan={3}>
                  {t("billing.total", { c: total.currency })}
                </th>
                <td class="num">{fmtInt(total.billable_count)}</td>
                <td />
                <td class="num">{fmtMoney(total.amount_micros, total.currency)}</td>
              </tr>
            ))}
          </tfoot>
        </table>
        </div>
      )}
      {lines.value && unpriced.value.size > 0 && (
        <p class="notice" data-testid="billing-unpriced">
          {t("billing.unpriced", { n: fmtInt(unpriced.value.size) })}
        </p>
      )}
      {lines.value?.some((l) => l.country === UNKNOWN_COUNTRY) && <p class="note">{t("billing.unknownCountry")}</p>}
    </section>
  );
}
