import { useSignal } from "@preact/signals";
import { ApiFailure } from "../api.ts";
import { locale, t } from "../i18n.ts";
import { login } from "../session.ts";
import { theme, toggleTheme } from "../theme.ts";

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
      error.value = err instanceof ApiFailure && err.status === 401 ? t("login.failed") : t("login.error");
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
        <label>
          {t("login.email")}
          <input type="email" name="email" autoComplete="username" required autoFocus value={email.value} onInput={(e) => (email.value = e.currentTarget.value)} />
        </label>
        <label>
          {t("login.password")}
          <input type="password" name="password" autoComplete="current-password" required value={password.value} onInput={(e) => (password.value = e.currentTarget.value)} />
        </label>
        {error.value && (
          <p class="error" role="alert">
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
