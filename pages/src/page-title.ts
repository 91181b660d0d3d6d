import { computed } from "@preact/signals";
import { clientInfo, clientRefusal } from "./client-directory.ts";
import { t } from "./i18n.ts";
import { overview } from "./overview-model.ts";
import { route, type Route } from "./router.ts";
import { currentUser } from "./session.ts";

/** The document's title: the page's name (anyone signed out sees the login page), then the app's. */
export const documentTitle = computed(() => `${currentUser.value === null ? t("login.title") : pageTitle(route.value)} · zapmeter`);

/**
 * What the document title names for a route (tabs, history and screen readers name the page by it): a
 * client by its name once known, and a client page that has nothing for the user by why.
 */
function pageTitle(r: Route): string {
  switch (r.name) {
    case "login":
      return t("login.title");
    case "overview":
      return t("overview.title");
    case "client":
      return clientTitle(r.id);
    case "billing":
      return t("billing.title");
    case "account":
      return t("account.title");
    case "not-found":
      return t("notFound");
  }
}

function clientTitle(id: string): string {
  const refusal = clientRefusal(id);
  if (refusal?.status === 403) return t("client.titleForbidden");
  if (refusal?.status === 404) return t("client.titleNotFound");
  return overview.nameOf(id) ?? clientInfo(id)?.name ?? id;
}
