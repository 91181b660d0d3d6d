import { useEffect, useMemo } from "preact/hooks";
import { STATUSES } from "../../../schema/event.ts";
import type { ApiFailure } from "../api.ts";
import { clientInfo, clientLookupFailure, clientRefusal, watchClient } from "../client-directory.ts";
import { CHART_HOURS, ClientModel } from "../client-model.ts";
import { BROWSER_TIME_ZONE, fmtInt, fmtPct, t } from "../i18n.ts";
import { overview } from "../overview-model.ts";
import { deliveryRate, readRate } from "../rates.ts";
import { currentUser, seesBilling, seesReports } from "../session.ts";
import { CategoryTable } from "./category-table.tsx";
import { StackedChart } from "./chart.tsx";
import { Failure } from "./failure.tsx";
import { LivePageHead } from "./header.tsx";
import { ReportExport } from "./report-export.tsx";
import { Unavailable } from "./unavailable.tsx";

/** The stream's refusals that mean this page has nothing for this user, as what to tell them. */
function unavailableReason(refusal: ApiFailure | null): string | null {
  if (refusal?.status === 403) return t("client.forbidden");
  if (refusal?.status === 404 && refusal.code === "client_not_found") return t("client.notFound");
  return null;
}

export function ClientPage({ clientId }: { clientId: string }) {
  const model = useMemo(() => new ClientModel(clientId), [clientId]);
  useEffect(() => watchClient(clientId), [clientId]);
  // Either refusal: the ticket's may be one that says nothing of the client (a 400 for an id no client
  // can have) while GET /v1/clients/:id says there is no such client.
  const unavailable = unavailableReason(model.connection.refusal.value) ?? unavailableReason(clientRefusal(clientId));
  // Refused by GET /v1/clients/:id first: the stream would only keep asking for tickets. The refusal
  // may be one remembered from an earlier visit, which the fresh answer takes back (the client was
  // given to the user since, or created): the stream starts then.
  const refused = unavailable !== null;
  useEffect(() => {
    if (refused) return;
    model.start();
    return () => model.stop();
  }, [model, refused]);
  if (unavailable) return <Unavailable title={clientId} message={unavailable} />;

  const today = model.today.value;
  const user = currentUser.value!;
  const info = clientInfo(clientId);
  const name = overview.nameOf(clientId) ?? info?.name;
  return (
    <section class="client" aria-labelledby="client-title">
      <a class="back" href="/">
        {t("nav.back")}
      </a>
      <LivePageHead titleId="client-title" connection={model.connection}>
        {name ?? clientId} {name && <small>{clientId}</small>}{" "}
        {info && !info.active && <span class="badge">{t("client.inactive")}</span>}
      </LivePageHead>
      {model.error.value != null && <Failure error={model.error.value} />}
      {clientLookupFailure(clientId) != null && <Failure error={clientLookupFailure(clientId)} />}
      <h2>
        {t("client.today")} {info && <small data-testid="client-timezone">{t("client.todayZone", { tz: info.timezone })}</small>}
      </h2>
      {/* Dimmed while the stream is down: the last numbers heard, not the current ones. */}
      <dl class={`totals${today && model.connection.status.value !== "live" ? " stale" : ""}`} data-testid="client-today">
        {STATUSES.map((s) => (
          <div class={`total s-${s}`} key={s} data-status={s}>
            <dt>{t(`status.${s}`)}</dt>
            <dd>{today ? fmtInt(today[s]) : "…"}</dd>
          </div>
        ))}
        <div class="total">
          <dt title={t("rate.deliveryHint")}>{t("client.deliveryRate")}</dt>
          <dd>{today ? fmtPct(deliveryRate(today)) : "…"}</dd>
        </div>
        <div class="total">
          <dt title={t("rate.readHint")}>{t("client.readRate")}</dt>
          <dd>{today ? fmtPct(readRate(today)) : "…"}</dd>
        </div>
      </dl>
      {info && <CategoryTable clientId={clientId} timezone={info.timezone} today={today} />}
      <h2 id="chart-title">
        {t("client.chart", { h: CHART_HOURS })} <small>{t("client.browserZone", { tz: BROWSER_TIME_ZONE })}</small>
      </h2>
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
