import { useEffect, useMemo } from "preact/hooks";
import type { StatusCounts } from "../../../schema/api.ts";
import { STATUSES } from "../../../schema/event.ts";
import { CATEGORY_REFRESH_MS, CategoryTotals } from "../category-totals.ts";
import { categoryLabel, fmtInt, t } from "../i18n.ts";
import { Failure } from "./failure.tsx";

/** Today's counts by pricing category, read again (at most every few seconds) as the live totals move. */
export function CategoryTable({ clientId, timezone, today }: { clientId: string; timezone: string; today: StatusCounts | null }) {
  const totals = useMemo(() => new CategoryTotals(clientId, timezone), [clientId, timezone]);
  useEffect(() => () => totals.stop(), [totals]);
  useEffect(() => totals.refresh(), [totals, today]);
  const rows = totals.rows.value;
  const uncategorizedReads = rows?.find((r) => r.category === null)?.read ?? 0;
  return (
    <section aria-labelledby="categories-title">
      <h2 id="categories-title">{t("client.byCategory")}</h2>
      {totals.error.value != null && <Failure error={totals.error.value} />}
      {rows?.length === 0 && <p class="empty">{t("client.noCategories")}</p>}
      {rows && rows.length > 0 && (
        <div class="table-scroll" role="region" aria-label={t("table.region", { name: t("client.byCategory") })} tabIndex={0}>
          <table class="lines sticky-first" data-testid="client-categories" aria-labelledby="categories-title">
            <thead>
              <tr>
                <th scope="col">{t("billing.category")}</th>
                {STATUSES.map((s) => (
                  <th scope="col" class="num" key={s}>
                    {t(`status.${s}`)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.category ?? ""} data-category={r.category ?? "none"}>
                  <th scope="row">{categoryLabel(r.category)}</th>
                  {STATUSES.map((s) => (
                    <td class="num" key={s} data-status={s}>
                      {fmtInt(r[s])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {rows && rows.length > 0 && <p class="muted note">{t("client.categoriesCadence", { s: CATEGORY_REFRESH_MS / 1000 })}</p>}
      {uncategorizedReads > 0 && <p class="muted note">{t("client.readsUncategorized")}</p>}
    </section>
  );
}
