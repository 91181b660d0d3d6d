import { useSignal, type Signal } from "@preact/signals";
import { MIN_PASSWORD_LENGTH, WeakPasswordReason, type PublicUser } from "../../../schema/api.ts";
import { ApiFailure } from "../api.ts";
import { t } from "../i18n.ts";
import { changePassword } from "../session.ts";
import { retryAfterS } from "./login.tsx";

type Field = "current" | "new" | "repeat";

/** What the page says for each `weak_password` reason. */
const WEAKNESS_TEXT = {
  common: "account.weak",
  repeated: "account.weakRepeated",
  email: "account.weakEmail",
  development: "account.weakDev",
} as const satisfies Record<WeakPasswordReason, string>;
type Refusal = { text: string; field?: Field };

/**
 * 403: the current password is wrong (the session stays; a 401 would sign the tab out). 429: too
 * many of those from this session or this address for a while.
 */
function changeFailure(err: unknown): Refusal {
  if (err instanceof ApiFailure && err.code === "invalid_current_password") return { text: t("account.wrongCurrent"), field: "current" };
  if (err instanceof ApiFailure && err.code === "too_many_attempts") return { text: t("account.lockedOut", { s: retryAfterS(err) }) };
  if (err instanceof ApiFailure && err.code === "weak_password") {
    const reason = WeakPasswordReason.safeParse((err.details as { reason?: unknown } | undefined)?.reason);
    return { text: t(reason.success ? WEAKNESS_TEXT[reason.data] : "account.weak"), field: "new" };
  }
  if (err instanceof ApiFailure && err.status === 400) return { text: t("account.refused", { message: err.message }), field: "new" };
  return { text: t("account.error") };
}

/** How a field is tied to the form's error, or to the password rule. */
type FieldLink = { "aria-invalid"?: true; "aria-describedby"?: string };

/** A required password input and its label; `link` ties it to the form's error or rule. */
function PasswordField(props: {
  label: string;
  name: string;
  autoComplete: "current-password" | "new-password";
  minLength?: number;
  value: Signal<string>;
  link: FieldLink;
  onEdit: () => void;
}) {
  return (
    <label>
      {props.label}
      <input
        type="password"
        name={props.name}
        autoComplete={props.autoComplete}
        required
        minLength={props.minLength}
        {...props.link}
        value={props.value.value}
        onInput={(e) => ((props.value.value = e.currentTarget.value), props.onEdit())}
      />
    </label>
  );
}

/** The signed-in user's account: who they are, and a new password of their own. */
export function AccountPage({ user }: { user: PublicUser }) {
  const current = useSignal("");
  const next = useSignal("");
  const repeat = useSignal("");
  const error = useSignal<Refusal | null>(null);
  const changed = useSignal(false);
  const busy = useSignal(false);

  async function submit(e: Event) {
    e.preventDefault();
    changed.value = false;
    error.value =
      next.value !== repeat.value
        ? { text: t("account.mismatch"), field: "repeat" }
        : next.value === current.value
          ? { text: t("account.same"), field: "new" }
          : null;
    if (error.value) return;
    busy.value = true;
    try {
      await changePassword(current.value, next.value);
      current.value = next.value = repeat.value = "";
      changed.value = true;
    } catch (err) {
      error.value = changeFailure(err);
    } finally {
      busy.value = false;
    }
  }
  const edited = () => {
    error.value = null;
    changed.value = false;
  };
  /** The error's link to the field it is about (read with the field, marked invalid). */
  const about = (field: Field): FieldLink =>
    error.value?.field === field ? { "aria-invalid": true as const, "aria-describedby": "password-error" } : { "aria-describedby": field === "new" ? "password-rule" : undefined };

  return (
    <section aria-labelledby="account-title">
      <div class="page-head">
        <h1 id="account-title">{t("account.title")}</h1>
      </div>
      <p class="muted" data-testid="account-who">
        {user.email} · {t(`role.${user.role}`)}
      </p>
      <form class="report" onSubmit={submit} aria-labelledby="password-title">
        <h2 id="password-title">{t("account.password")}</h2>
        {/* Password managers file the new password under the username field of its form (Chromium reads a hidden one). */}
        <input type="email" name="username" autoComplete="username" value={user.email} readOnly hidden />
        <p class="note" id="password-rule">
          {t("account.rule", { n: MIN_PASSWORD_LENGTH })}
        </p>
        <PasswordField label={t("account.current")} name="current-password" autoComplete="current-password" value={current} link={about("current")} onEdit={edited} />
        <PasswordField label={t("account.new")} name="new-password" autoComplete="new-password" minLength={MIN_PASSWORD_LENGTH} value={next} link={about("new")} onEdit={edited} />
        <PasswordField label={t("account.repeat")} name="repeat-password" autoComplete="new-password" value={repeat} link={about("repeat")} onEdit={edited} />
        <button type="submit" class="primary" aria-disabled={busy.value} aria-busy={busy.value} disabled={busy.value}>
          {t("account.submit")}
        </button>
        {error.value && (
          <p class="error" role="alert" id="password-error">
            {error.value.text}
          </p>
        )}
        {changed.value && (
          <p class="note" role="status" data-testid="password-changed">
            {t("account.changed")}
          </p>
        )}
      </form>
    </section>
  );
}
