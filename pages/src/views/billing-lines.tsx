import { useMemo } from "preact/hooks";
import { totalsByCurrency, type BillingLine } from "../../../schema/billing.ts";
import { lineKey } from "../billing-model.ts";
import { categoryLabel, fmtInt, fmtMoney, t } from "../i18n.ts";
import { moneyDigits } from "../money.ts";
import { rowWindow, useScrollBox } from "../row-window.ts";

/** A line's height in px, as styles.css fixes it (`.windowed tbody tr`). */
const ROW_HEIGHT = 32;

/**
 * A day's billing lines and their totals per currency; `unpriced` (by lineKey) are the lines no rate
 * card prices. The table scrolls in its own box, so its header row stays in view over hundreds of lines.
 * A day at 10,000 clients has ~60,000 lines: only those in view of the box are rendered (the header and
 * footer rows are within the overscan), with a spacer row above and below standing for the others, so
 * the box scrolls as if all were there; the totals, decimals and aria-rowcount are those of all lines.
 */
export function BillingLines({ lines, unpriced }: { lines: BillingLine[]; unpriced: ReadonlySet<string> }) {
  // Over all the lines, once per lines: a scroll renders the table again, with other lines in view.
  const { totals, unitDigits, amountDigits } = useMemo(() => {
    const totals = totalsByCurrency(lines);
    // One count of decimals per column, the totals' included, so the decimal marks line up.
    return { totals, unitDigits: moneyDigits(lines.map((l) => l.unit_price_micros)), amountDigits: moneyDigits([...lines, ...totals].map((l) => l.amount_micros)) };
  }, [lines]);
  const box = useScrollBox<HTMLDivElement>();
  const { first, last } = rowWindow(lines.length, ROW_HEIGHT, box.scrollTop.value, box.height.value);
  return (
    <div class="table-scroll tall" role="region" aria-label={t("table.region", { name: t("billing.title") })} tabIndex={0} ref={box.ref} onScroll={box.onScroll}>
      <table class="lines windowed sticky-first sticky-head" aria-labelledby="billing-title" aria-rowcount={1 + lines.length + totals.length}>
        <thead>
          <tr aria-rowindex={1}>
            <th scope="col">{t("col.client")}</th>
            <th scope="col">{t("billing.category")}</th>
            <th scope="col">{t("billing.country")}</th>
            <th scope="col" class="num">{t("billing.count")}</th>
            <th scope="col" class="num">{t("billing.unit")}</th>
            <th scope="col" class="num">{t("billing.amount")}</th>
          </tr>
        </thead>
        <tbody>
          <Spacer rows={first} />
          {lines.slice(first, last).map((l, i) => (
            <tr key={lineKey(l)} aria-rowindex={2 + first + i} data-unpriced={unpriced.has(lineKey(l)) || undefined}>
              {/* Cut short to keep the row one line high: the whole name on hover. */}
              <td title={l.client_name}>{l.client_name}</td>
              <td>{categoryLabel(l.category)}</td>
              <td>{l.country}</td>
              <td class="num">{fmtInt(l.billable_count)}</td>
              <td class="num">{unpriced.has(lineKey(l)) ? <em class="muted">{t("billing.noRate")}</em> : fmtMoney(l.unit_price_micros, l.currency, unitDigits)}</td>
              <td class="num">{fmtMoney(l.amount_micros, l.currency, amountDigits)}</td>
            </tr>
          ))}
          <Spacer rows={lines.length - last} />
        </tbody>
        <tfoot>
          {totals.map((total, i) => (
            <tr key={total.currency} aria-rowindex={2 + lines.length + i} data-testid="billing-total">
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

/** The height of `rows` lines not rendered; none when there are none, so a short day's table is its lines alone. */
function Spacer({ rows }: { rows: number }) {
  if (rows === 0) return null;
  return (
    <tr class="spacer" aria-hidden="true" style={{ height: `${rows * ROW_HEIGHT}px` }}>
      <td colSpan={6} />
    </tr>
  );
}
