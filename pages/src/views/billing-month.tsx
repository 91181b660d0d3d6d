import { useEffect } from "preact/hooks";
import type { BillingMonthModel } from "../billing-model.ts";
import { fmtInt, fmtMoney, localDateTime, t } from "../i18n.ts";
import { moneyDigits } from "../money.ts";
import { Failure } from "./failure.tsx";

/**
 * A month's billing (BillingMonthModel), to invoice it: per client and currency, the totals per
 * currency, and which of its days are not final yet (never billed, or a client's day not yet closed
 * when it was).
 */
export function BillingMonth({ model }: { model: BillingMonthModel }) {
  useEffect(() => void model.load(), [model]);
  const { month, summary, error } = model;
  // One count of decimals for the amount column, the totals' included, so the decimal marks line up.
  const digits = moneyDigits([...(summary.value?.clients ?? []), ...(summary.value?.totals ?? [])].map((c) => c.amount_micros));
  const { past, pending, running } = model.pendingDays(localDateTime(Date.now()).slice(0, 10));
  const dayList = (days: string[]) => days.map((d) => d.slice(8)).join(", ");
  const finality = [
    pending.length > 0
      ? t("billing.month.pending", { n: fmtInt(pending.length), days: dayList(pending) })
      : past === 0
        ? t("billing.month.noPastDays")
        : t("billing.month.final"),
    // On a month's first day the sentence before already says the totals are today's so far.
    ...(running.length > 0 && past > 0 ? [t("billing.month.running", { days: dayList(running) })] : []),
  ].join(" ");

  return (
    <section class="billing-month" id="billing-month" aria-labelledby="billing-month-title">
      <h2 id="billing-month-title">{t("billing.month.title")}</h2>
      <form class="filters" onSubmit={(e) => (e.preventDefault(), void model.load())}>
        <label>
          {t("billing.month.month")} <input type="month" value={month.value} onInput={(e) => (month.value = e.currentTarget.value)} required />
        </label>
        <button type="submit">{t("billing.month.load")}</button>
      </form>
      {error.value != null && <Failure error={error.value} fields={{ from: t("billing.month.month"), to: t("billing.month.month") }} />}
      {summary.value && (
        <>
          <p class={pending.length > 0 || (running.length > 0 && past > 0) ? "notice" : "muted"} role="status" data-testid="billing-month-final">
            {finality}
          </p>
          {summary.value.clients.length === 0 ? (
            <p class="empty">{t("billing.month.none")}</p>
          ) : (
            <div class="table-scroll" role="region" aria-label={t("table.region", { name: t("billing.month.title") })} tabIndex={0}>
              <table class="lines sticky-first" aria-labelledby="billing-month-title">
                <thead>
                  <tr>
                    <th scope="col">{t("col.client")}</th>
                    <th scope="col" class="num">{t("billing.count")}</th>
                    <th scope="col" class="num">{t("billing.amount")}</th>
                  </tr>
                </thead>
                <tbody>
                  {summary.value.clients.map((c) => (
                    <tr key={`${c.client_id}|${c.currency}`}>
                      <td>{c.client_name}</td>
                      <td class="num">{fmtInt(c.billable_count)}</td>
                      <td class="num">{fmtMoney(c.amount_micros, c.currency, digits)}</td>
                    </tr>
                  ))}
                </tbody>
                <tfoot>
                  {summary.value.totals.map((total) => (
                    <tr key={total.currency} data-testid="billing-month-total">
                      <th scope="row">{t("billing.total", { c: total.currency })}</th>
                      <td class="num">{fmtInt(total.billable_count)}</td>
                      <td class="num">{fmtMoney(total.amount_micros, total.currency, digits)}</td>
                    </tr>
                  ))}
                </tfoot>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}
