import type { PublicUser } from "../../../schema/api.ts";
import { locale, t } from "../i18n.ts";
import type { ComponentChildren } from "preact";
import type { LiveConnection, LiveStatus } from "../live-connection.ts";
import { route } from "../router.ts";
import { logout, seesBilling } from "../session.ts";
import { theme, toggleTheme } from "../theme.ts";
import { Failure } from "./failure.tsx";

export function Header({ user }: { user: PublicUser }) {
  const r = route.value.name;
  return (
    <header class="topbar">
      <a class="brand" href="/">
        <span class="dot" aria-hidden="true" /> zapmeter
      </a>
      <nav aria-label={t("nav.label")}>
        <a href="/" aria-current={r === "overview" ? "page" : undefined}>
          {t("nav.overview")}
        </a>
        {seesBilling(user) && (
          <a href="/billing" aria-current={r === "billing" ? "page" : undefined}>
            {t("nav.billing")}
          </a>
        )}
        <a href="/account" aria-current={r === "account" ? "page" : undefined}>
          {t("nav.account")}
        </a>
      </nav>
      <div class="tools">
        <span class="who">{user.email}</span>
        <button type="button" onClick={() => (locale.value = locale.value === "en" ? "pt-BR" : "en")} lang={locale.value === "en" ? "pt-BR" : "en"}>
          {t("nav.language")}
        </button>
        <button type="button" onClick={toggleTheme}>
          {theme.value === "dark" ? t("nav.theme.light") : t("nav.theme.dark")}
        </button>
        <button type="button" onClick={() => void logout()}>
          {t("nav.logout")}
        </button>
      </div>
    </header>
  );
}

/** Connection indicator, or "paused" where the page holds its numbers; announced to screen readers when it changes. */
export function LiveBadge({ status }: { status: LiveStatus | "paused" }) {
  return (
    <span class={`live live-${status}`} role="status" data-testid="live-status" data-status={status}>
      <span class="dot" aria-hidden="true" />
      {t(`live.${status}`)}
    </span>
  );
}

/**
 * A page's heading with its live badge (`status`, the connection's unless the page says otherwise)
 * or, when the server refused the stream, the reason instead: a refused stream is not coming back, so
 * no badge may say it is reconnecting.
 */
export function LivePageHead({
  titleId,
  connection,
  status = connection.status.value,
  children,
}: {
  titleId: string;
  connection: LiveConnection;
  status?: LiveStatus | "paused";
  children: ComponentChildren;
}) {
  const refusal = connection.refusal.value;
  return (
    <>
      <div class="page-head">
        <h1 id={titleId}>{children}</h1>
        {!refusal && <LiveBadge status={status} />}
      </div>
      {refusal && <Failure error={refusal} />}
    </>
  );
}
