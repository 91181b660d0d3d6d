import { signal } from "@preact/signals";
import type { SessionEnd } from "./session.ts";

export type Route =
  | { name: "login" }
  | { name: "overview" }
  | { name: "client"; id: string }
  | { name: "billing" }
  | { name: "account" }
  | { name: "not-found" };

/** Path → route. New pages (e.g. admin) add a line here and a view in app.tsx. */
export function parseRoute(raw: string): Route {
  // "/clients/acme/" is the same page as "/clients/acme".
  const path = raw.length > 1 ? raw.replace(/\/+$/, "") : raw;
  if (path === "/" || path === "") return { name: "overview" };
  if (path === "/login") return { name: "login" };
  if (path === "/billing") return { name: "billing" };
  if (path === "/account") return { name: "account" };
  const client = path.match(/^\/clients\/([^/]+)$/);
  if (client) return clientRoute(client[1]!);
  return { name: "not-found" };
}

/** A client's page; a typed or cut link whose escapes do not decode names no client (URIError would blank the app). */
function clientRoute(escaped: string): Route {
  try {
    return { name: "client", id: decodeURIComponent(escaped) };
  } catch {
    return { name: "not-found" };
  }
}

export const route = signal<Route>(parseRoute(location.pathname));

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  route.value = parseRoute(location.pathname);
  window.scrollTo(0, 0);
}

addEventListener("popstate", () => (route.value = parseRoute(location.pathname)));

/**
 * Lets plain <a href> links navigate inside the app (keyboard and middle-click keep working). A link
 * to a place on this page (the skip link's #main) is left to the browser, which scrolls and focuses.
 */
export function onLinkClick(e: MouseEvent): void {
  const a = (e.target as Element).closest("a");
  if (!a || a.target || a.hasAttribute("download") || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
}

/**
 * The sign-in page for a tab whose session is gone. A session that ended by itself (expired, revoked)
 * brings the user back to `pathname` once they sign in again; a sign-out does not, or the next person to
 * sign in on this machine would land on the last one's page (their client, or its "no access").
 */
export function loginPath(end: SessionEnd | null, pathname: string): string {
  return end === "signed-out" ? "/login" : `/login?next=${encodeURIComponent(pathname)}`;
}

/**
 * Where to go after signing in: `next` only when it is a path on this origin ("/clients/acme"), never
 * "//host", "/\host", "https://…" or "javascript:…", which would leave the app or fail to load.
 */
export function afterLogin(next: string | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  const url = new URL(next, location.origin);
  if (url.origin !== location.origin || parseRoute(url.pathname).name === "login") return "/";
  return url.pathname + url.search;
}
