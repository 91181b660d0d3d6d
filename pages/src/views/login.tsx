import { useSignal } from "@preact/signals";
import { ApiFailure } from "../api.ts";
import { locale, t } from "../i18n.ts";
import { login, sessionEnd } from "../session.ts";
import { theme, toggleTheme } from "../theme.ts";

/**
 * 401: wrong credentials. 400: the server refuses the input itself (an address the browser accepts,
 * like admin@localhost). 429: the account is locked for a while; the right password is refused too.
 */
function loginFailure(err: unknown): string {
  if (err instanceof ApiFailure && err.status === 401) return t("login.failed");
  if (err instanceof ApiFailure && err.status === 400) return t("login.invalid");
  if (err instanceof ApiFailure && err.code === "too_many_attempts") return t("login.lockedOut", { s: retryAfterS(err) });
  return t("login.error");
}

/** How long a lockout (429 `too_many_attempts`) lasts. */
export function retryAfterS(err: ApiFailure): number {
  return (err.details as { retry_after_s?: number } | undefined)?.retry_after_s ?? 60;
}

export function LoginPage() {
  const email = useSignal("");
  const password = useSignal("");
  const error = useSignal<string | null>(null);
  const busy = useSignal(false);

  async function submit(e: Event) {
    e.preventDefault();
    busy.value = true;
    error.value = null;
    try {
      await login(email.value, password.value);
    } catch (err) {
      error.value = loginFailure(err);
    } finally {
      busy.value = false;
    }
  }

  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">
          <span class="dot" aria-hidden="true" /> {t("login.title")}
        </h1>
        {/* Only when the server ended it: after a sign-out the user knows, and the next person need not. */}
        {sessionEnd.value === "expired" && (
          <p class="notice" role="status" data-testid="session-expired">
            {t("login.expired")}
          </p>
        )}
        <label>
          {t("login.email")}
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            autoFocus
            aria-invalid={error.value ? true : undefined}
            aria-describedby={error.value ? "login-error" : undefined}
            value={email.value}
            onInput={(e) => (email.value = e.currentTarget.value)}
          />
        </label>
        <label>
          {t("login.password")}
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            aria-invalid={error.value ? true : undefined}
            aria-describedby={error.value ? "login-error" : undefined}
            value={password.value}
            onInput={(e) => (password.value = e.currentTarget.value)}
          />
        </label>
        {error.value && (
          <p class="error" role="alert" id="login-error">
            {error.value}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy.value}>
          {t("login.submit")}
        </button>
        <div class="login-tools">
          <button type="button" onClick={() => (locale.value = locale.value === "en" ? "pt-BR" : "en")}>
            {t("nav.language")}
          </button>
          <button type="button" onClick={toggleTheme}>
            {theme.value === "dark" ? t("nav.theme.light") : t("nav.theme.dark")}
          </button>
        </div>
      </form>
    </main>
  );
}
