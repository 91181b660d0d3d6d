import { useSignalEffect } from "@preact/signals";
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { documentTitle } from "../page-title.ts";
import { afterLogin, loginPath, navigate, onLinkClick, route } from "../router.ts";
import { currentUser, loadSession, sessionEnd, sessionUnreachable } from "../session.ts";
import { t } from "../i18n.ts";
import { AccountPage } from "./account.tsx";
import { BillingPage } from "./billing.tsx";
import { ClientPage } from "./client.tsx";
import { Header } from "./header.tsx";
import { LoginPage } from "./login.tsx";
import { OverviewPage } from "./overview.tsx";
import { Unavailable } from "./unavailable.tsx";

/** Routes to pages; anyone not signed in sees the login page. */
export function App() {
  useEffect(() => void loadSession(), []);
  const user = currentUser.value;
  const r = route.value;
  const main = useRef<HTMLElement>(null);
  const firstRoute = useRef(r);

  useEffect(() => {
    if (user === null && r.name !== "login") navigate(loginPath(sessionEnd.value, location.pathname), true);
    if (user && r.name === "login") navigate(afterLogin(new URLSearchParams(location.search).get("next")), true);
  }, [user, r.name]);

  // After in-app navigation, keyboard and screen reader users start on the new page, not at the top of
  // the document (where the link they followed was). A freshly loaded page keeps the browser's focus.
  // A layout effect: in the same commit as the new page, before anyone can focus something on it (a
  // later effect took the focus back from whoever was quick).
  useLayoutEffect(() => {
    if (r !== firstRoute.current) main.current?.focus({ preventScroll: true });
  }, [r]);

  // Tabs, history and screen readers name the page, not just the app; a client's name comes later
  // than its route, so the title follows the signals it is made of, without re-rendering the app.
  useSignalEffect(() => {
    document.title = documentTitle.value;
  });

  if (user === undefined) {
    return (
      <div class="splash" aria-busy="true">
        {sessionUnreachable.value && (
          <p class="error" role="alert">
            {t("session.unreachable")}
          </p>
        )}
      </div>
    );
  }
  if (user === null || r.name === "login") return <LoginPage />;
  return (
    <div class="shell" onClick={onLinkClick}>
      <a class="skip" href="#main">
        {t("nav.skip")}
      </a>
      <Header user={user} />
      <main id="main" tabIndex={-1} ref={main}>
        {r.name === "overview" && <OverviewPage />}
        {r.name === "client" && <ClientPage key={r.id} clientId={r.id} />}
        {r.name === "billing" && <BillingPage />}
        {r.name === "account" && <AccountPage user={user} />}
        {r.name === "not-found" && <Unavailable title={t("notFound")} message={t("notFoundHint")} />}
      </main>
    </div>
  );
}
