import type { ComponentChildren } from "preact";
import { t } from "../i18n.ts";

/** A page that has nothing to show this user (no access, nothing there): says why and leads back. */
export function Unavailable({ title, message }: { title: ComponentChildren; message: string }) {
  return (
    <section class="unavailable" aria-labelledby="unavailable-title">
      <h1 id="unavailable-title">{title}</h1>
      <p role="alert" data-testid="unavailable">
        {message}
      </p>
      <a class="button" href="/">
        {t("nav.back")}
      </a>
    </section>
  );
}
