import { useSignal } from "@preact/signals";
import { STATUSES, type Status } from "../../../schema/event.ts";
import type { ReportFormat } from "../../../schema/api.ts";
import { download } from "../api.ts";
import { BROWSER_TIME_ZONE, localDateTime, t } from "../i18n.ts";
import { reportRowless } from "../report-rows.ts";
import { Failure } from "./failure.tsx";

/** The detailed report (GET /v1/clients/:id/report), for a range in the browser's time zone. */
export function ReportExport({ clientId }: { clientId: string }) {
  const from = useSignal(localDateTime(Date.now() - 24 * 3_600_000));
  // The input has minute precision: round up so the current minute's events are included.
  const to = useSignal(localDateTime(Date.now() + 60_000));
  const format = useSignal<ReportFormat>("csv");
  const status = useSignal<Status | "">("");
  const rangeReversed = useSignal(false);
  const failure = useSignal<unknown>(null);
  const busy = useSignal(false);
  /** The format of the last report downloaded, when it had no rows. */
  const empty = useSignal<ReportFormat | null>(null);

  /** A complaint about the range is about the range as it was: editing it takes the complaint back. */
  function edited() {
    rangeReversed.value = false;
    failure.value = null;
    empty.value = null;
  }

  async function submit(e: Event) {
    e.preventDefault();
    if (busy.value) return;
    failure.value = null;
    empty.value = null;
    const fromMs = new Date(from.value).getTime();
    const toMs = new Date(to.value).getTime();
    rangeReversed.value = !(fromMs < toMs);
    if (rangeReversed.value) return;
    const q = new URLSearchParams({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), format: format.value });
    if (status.value) q.set("status", status.value);
    // A CSV downloaded here is opened in a spreadsheet, which reads ISO-8601 text as dates.
    if (format.value === "csv") q.set("times", "iso");
    busy.value = true;
    try {
      const asked = format.value;
      const file = await download(`/v1/clients/${encodeURIComponent(clientId)}/report?${q}`, `${clientId}-report.${asked}`);
      empty.value = (await reportRowless(file, asked)) ? asked : null;
    } catch (err) {
      failure.value = err;
    } finally {
      busy.value = false;
    }
  }

  return (
    <form class="report" onSubmit={submit} aria-labelledby="report-title">
      <h2 id="report-title">{t("client.report")}</h2>
      <p class="note" id="report-zone">
        {t("client.reportZone", { tz: BROWSER_TIME_ZONE })} {t("client.toExclusive")} {format.value === "csv" && t("client.csvUtc")}
      </p>
      <label>
        {t("client.from")}
        <input type="datetime-local" value={from.value} onInput={(e) => ((from.value = e.currentTarget.value), edited())} required aria-describedby="report-zone" />
      </label>
      <label>
        {t("client.to")}
        <input
          type="datetime-local"
          value={to.value}
          onInput={(e) => ((to.value = e.currentTarget.value), edited())}
          required
          aria-describedby="report-zone"
          aria-invalid={rangeReversed.value}
          aria-errormessage={rangeReversed.value ? "report-range-error" : undefined}
        />
      </label>
      <label>
        {t("client.status")}
        <select value={status.value} onChange={(e) => ((status.value = e.currentTarget.value as Status | ""), edited())}>
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
        <select value={format.value} onChange={(e) => ((format.value = e.currentTarget.value as ReportFormat), edited())}>
          <option value="csv">CSV</option>
          <option value="parquet">Parquet</option>
        </select>
      </label>
      {/* aria-disabled, not disabled: a disabled button drops keyboard focus to the page; submit() ignores clicks while busy. */}
      <button type="submit" aria-disabled={busy.value} aria-busy={busy.value}>
        {busy.value ? t("client.downloading") : t("client.download")}
      </button>
      {rangeReversed.value && (
        <p class="error" role="alert" id="report-range-error">
          {t("client.rangeOrder")}
        </p>
      )}
      {empty.value && (
        <p class="notice" role="status" data-testid="report-empty">
          {t(empty.value === "csv" ? "client.reportEmptyCsv" : "client.reportEmptyParquet")}
        </p>
      )}
      {failure.value != null && (
        <Failure error={failure.value} fields={{ from: t("client.from"), to: t("client.to"), status: t("client.status"), format: t("client.format") }} />
      )}
    </form>
  );
}
