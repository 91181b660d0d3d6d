import { totalsByCurrency, type BillingLine } from "../../../schema/billing.ts";
import { lineKey } from "../billing-model.ts";
import { categoryLabel, fmtInt, fmtMoney, t } from "../i18n.ts";
import { moneyDigits } from "../money.ts";

/**
 * A day's billing lines and their totals per currency; `unpriced` (by lineKey) are the lines no rate
 * card prices. The table scrolls in its own box, so its header row stays in view over hundreds of lines.
 */
export function BillingLines({ lines, unpriced }: { lines: BillingLine[]; unpriced: ReadonlySet<string> }) {
  const totals = totalsByCurrency(lines);
  // One count of decimals per column, the totals' included, so the decimal marks line up.
  const unitDigits = moneyDigits(lines.map((l) => l.unit_price_micros));
  const amountDigits = moneyDigits([...lines, ...totals].map((l) => l.amount_micros));
  return (
    <div class="table-scroll tall" role="region" aria-label={t("table.region", { name: t("billing.title") })} tabIndex={0}>
      <table class="lines sticky-first sticky-head" aria-labelledby="billing-title">
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
          {lines.map((l) => (
            <tr key={lineKey(l)} data-unpriced={unpriced.has(lineKey(l)) || undefined}>
              <td>{l.client_name}</td>
              <td>{categoryLabel(l.category)}</td>
              <td>{l.country}</td>
              <td class="num">{fmtInt(l.billable_count)}</td>
              <td class="num">{unpriced.has(lineKey(l)) ? <em class="muted">{t("billing.noRate")}</em> : fmtMoney(l.unit_price_micros, l.currency, unitDigits)}</td>
              <td class="num">{fmtMoney(l.amount_micros, l.currency, amountDigits)}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          {totals.map((total) => (
            <tr key={total.currency} data-testid="billing-total">
              <th scope="row" colSpan={3}>
                {t("billing.total", { c: total.currency })}
              </th>
              <td class="num">{fmtInt(total.billable_count)}</td>
              <td />
              <td class="num">{fmtMoney(total.amount_micros, total.currency, amountDigits)}</td>
            </tr>
          ))}
        </tfoot>
      </table>
    </div>
  );
}
