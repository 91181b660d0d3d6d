import type { ComponentChildren } from "preact";
import { z } from "zod";
import { ApiFailure } from "../api.ts";
import { t } from "../i18n.ts";

/** A validation failure's details as every route sends them: which field, and what is wrong with it. */
const Issues = z.array(z.object({ path: z.string(), message: z.string() }));

/**
 * Why a call failed: in the user's language when the status or error code says enough, else the
 * server's own words, marked as English so a screen reader pronounces them as such. `fields` names
 * the form's fields for a validation failure (`{ to: "Até" }`).
 */
export function Failure({ error, fields = {} }: { error: unknown; fields?: Record<string, string> }) {
  return (
    <p class="error" role="alert">
      {explain(error, fields)}
    </p>
  );
}

function explain(error: unknown, fields: Record<string, string>): ComponentChildren {
  // fetch rejects with a TypeError when the request never got an answer.
  if (error instanceof TypeError || (error instanceof ApiFailure && error.status >= 500)) return t("error.unavailable");
  if (!(error instanceof ApiFailure)) return t("error.generic");
  if (error.status === 403) return t("error.forbidden");
  if (error.code === "client_not_found") return t("client.notFound");
  if (error.code === "range_too_large") return t("error.rangeTooLarge", { n: (error.details as { max_days?: number } | undefined)?.max_days ?? "?" });
  if (error.code === "billing_not_computed") return t("billing.noFile");
  const issues = Issues.safeParse(error.details);
  if (error.code === "validation_failed" && issues.success) {
    return (
      <>
        {t("error.invalid")}
        {issues.data.map((issue, i) => (
          <span key={i}>
            {" "}
            {fields[issue.path] ?? issue.path}: <span lang="en">{issue.message}</span>
          </span>
        ))}
      </>
    );
  }
  return (
    <>
      {t("error.server")} <span lang="en">{error.message}</span>
    </>
  );
}
