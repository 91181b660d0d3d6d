import { useSignal } from "@preact/signals";
import { useEffect, useMemo } from "preact/hooks";
import { STATUSES, type Status } from "../../../schema/event.ts";
import { download, type ApiFailure } from "../api.ts";
import { CHART_HOURS, ClientModel } from "../client-model.ts";
import { fmtInt, fmtPct, t } from "../i18n.ts";
import { overview } from "../overview-model.ts";
import { currentUser, seesBilling, seesReports } from "../session.ts";
import { StackedChart } from "./chart.tsx";
import { Failure } from "./failure.tsx";
import { LivePageHead } from "./header.tsx";
import { Unavailable } from "./unavailable.tsx";

/** The stream's refusals that mean this page has nothing for this user, as what to tell them. */
function unavailableReason(refusal: ApiFailure | null): string | null {
  if (refusal?.status === 403) return t("client.forbidden");
  if (refusal?.status === 404 && refusal.code === "client_not_found") return t("client.notFound");
  return null;
}

export function ClientPage({ clientId }: { clientId: string }) {
  const model = useMemo(() => new ClientModel(clientId), [clientId]);
  useEffect(() => {
    model.start();
    return () => model.stop();
  }, [model]);
  const unavailable = unavailableReason(model.connection.refusal.value);
  if (unavailable) return <Unavailable title={clientId} message={unavailable} />;

  const today = model.today.value;
  const user = currentUser.value!;
  return (
    <section class="client" aria-labelledby="client-title">
      <a class="back" href="/">
        {t("nav.back")}
      </a>
      <LivePageHead titleId="client-title" connection={model.connection}>
        {overview.nameOf(clientId) ?? clientId} <small>{clientId}</small>
      </LivePageHead>
      {model.error.value != null && <Failure error={model.error.value} />}
      <h2>{t("client.today")}</h2>
      <dl class="totals" data-testid="client-today">
        {STATUSES.map((s) => (
          <div class={`total s-${s}`} key={s} data-status={s}>
            <dt>{t(`status.${s}`)}</dt>
            <dd>{today ? fmtInt(today[s]) : "…"}</dd>
          </div>
        ))}
        <div class="total">
          <dt>{t("col.deliveryRate")}</dt>
          <dd>{today ? fmtPct(today.delivered, today.sent) : "…"}</dd>
        </div>
        <div class="total">
          <dt>{t("col.readRate")}</dt>
          <dd>{today ? fmtPct(today.read, today.delivered) : "…"}</dd>
        </div>
      </dl>
      <h2>{t("client.chart", { h: CHART_HOURS })}</h2>
      <StackedChart model={model} />
      <div class="links">
        {seesReports(user) && <ReportExport clientId={clientId} />}
        {seesBilling(user) && (
          <a class="button" href="/billing">
            {t("client.billing")}
          </a>
        )}
      </div>
    </section>
  );
}

const isoLocal = (ms: number) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

/** The detailed report (GET /v1/clients/:id/report), for a local time range. */
function ReportExport({ clientId }: { clientId: string }) {
  const from = useSignal(isoLocal(Date.now() - 24 * 3_600_000));
  // The input has minute precision: round up so the current minute's events are included.
  const to = useSignal(isoLocal(Date.now() + 60_000));
  const format = useSignal<"csv" | "parquet">("csv");
  const status = useSignal<Status | "">("");
  const failure = useSignal<unknown>(null);
  async function submit(e: Event) {
    e.preventDefault();
    failure.value = null;
    const q = new URLSearchParams({
      from: new Date(from.value).toISOString(),
      to: new Date(to.value).toISOString(),
      format: format.value,
    });
    if (status.value) q.set("status", status.value);
    // A CSV downloaded here is opened in a spreadsheet, which reads ISO-8601 text as dates.
    if (format.value === "csv") q.set("times", "iso");
    try {
      await download(`/v1/clients/${encodeURIComponent(clientId)}/report?${q}`, `${clientId}-report.${format.value}`);
    } catch (err) {
      failure.value = err;
    }
  }
  return (
    <form class="report" onSubmit={submit} aria-labelledby="report-title">
      <h2 id="report-title">{t("client.report")}</h2>
      <label>
        {t("client.from")}
        <input type="datetime-local" value={from.value} onInput={(e) => (from.value = e.currentTarget.value)} required />
      </label>
      <label>
        {t("client.to")}
        <input type="datetime-local" value={to.value} onInput={(e) => (to.value = e.currentTarget.value)} required />
      </label>
      <label>
        {t("client.status")}
        <select value={status.value} onChange={(e) => (status.value = e.currentTarget.value as Status | "")}>
          <option value="">{t("client.allStatuses")}</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {t(`status.${s}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t("client.format")}
        <select value={format.value} onChange={(e) => (format.value = e.currentTarget.value as "csv" | "parquet")}>
          <option value="csv">CSV</option>
          <option value="parquet">Parquet</option>
        </select>
      </label>
      <button type="submit">{t("client.download")}</button>
      {failure.value != null && (
        <Failure error={failure.value} fields={{ from: t("client.from"), to: t("client.to"), status: t("client.status"), format: t("client.format") }} />
      )}
    </form>
  );
}
