import { computed, effect, signal } from "@preact/signals";
import { CATEGORIES, type Category } from "../../schema/event.ts";

export type Locale = "pt-BR" | "en";
const LOCALE_KEY = "zapmeter.locale";

/** pt-BR by default; English on request (remembered in this browser). */
export const locale = signal<Locale>(localStorage.getItem(LOCALE_KEY) === "en" ? "en" : "pt-BR");
effect(() => {
  localStorage.setItem(LOCALE_KEY, locale.value);
  document.documentElement.lang = locale.value;
});

const PT = {
  "app.title": "zapmeter",
  "nav.overview": "Visão geral",
  "nav.billing": "Faturamento",
  "nav.logout": "Sair",
  "nav.language": "English",
  "nav.theme.dark": "Tema escuro",
  "nav.theme.light": "Tema claro",
  "nav.skip": "Pular para o conteúdo",
  "nav.back": "← Visão geral",
  "live.live": "Ao vivo",
  "live.connecting": "Conectando…",
  "live.offline": "Reconectando…",
  "login.title": "Entrar no zapmeter",
  "login.email": "E-mail",
  "login.password": "Senha",
  "login.submit": "Entrar",
  "login.failed": "E-mail ou senha incorretos.",
  "login.error": "Não foi possível entrar agora. Tente de novo.",
  "login.invalid": "O e-mail ou a senha não estão num formato válido.",
  "overview.title": "Notificações por cliente",
  "overview.search": "Buscar cliente",
  "overview.clients": "{n} clientes",
  "overview.oneClient": "1 cliente",
  "overview.empty": "Nenhum cliente encontrado.",
  "overview.loading": "Carregando clientes…",
  "col.client": "Cliente",
  "col.minute": "Minuto atual",
  "col.hour": "Últimos 60 min",
  "col.today": "Hoje",
  "col.deliveryRate": "Entrega",
  "col.readRate": "Leitura",
  "col.trend": "60 min",
  "col.rates": "Taxas de hoje",
  "status.accepted": "aceitas",
  "status.sent": "enviadas",
  "status.delivered": "entregues",
  "status.read": "lidas",
  "status.failed": "falhas",
  "client.today": "Hoje",
  "client.todayZone": "(fuso horário do cliente: {tz})",
  "client.chart": "Por minuto, últimas {h} horas",
  "client.browserZone": "(horário local do navegador: {tz})",
  "client.time": "Hora",
  "client.report": "Exportar relatório detalhado",
  "client.from": "De",
  "client.to": "Até",
  "client.format": "Formato",
  "client.status": "Status",
  "client.allStatuses": "todos",
  "client.download": "Baixar",
  "client.downloading": "Baixando…",
  "client.reportZone": "“De” e “Até” no horário local do navegador ({tz}).",
  "client.csvUtc": "No CSV, os horários estão em UTC.",
  "client.rangeOrder": "“De” precisa ser antes de “Até”.",
  "client.forbidden": "Você não tem acesso a este cliente.",
  "client.notFound": "Cliente não encontrado.",
  "client.billing": "Faturamento",
  "client.byCategory": "Hoje por categoria",
  "client.deliveryRate": "Taxa de entrega",
  "client.readRate": "Taxa de leitura",
  "client.noCategories": "Nenhuma notificação hoje.",
  "client.readsUncategorized": "As confirmações de leitura chegam sem categoria de preço: contam na categoria da mensagem quando ela já era conhecida, senão em “Sem categoria”.",
  "category.marketing": "Marketing",
  "category.marketing_lite": "Marketing lite",
  "category.utility": "Utilidade",
  "category.authentication": "Autenticação",
  "category.authentication_international": "Autenticação internacional",
  "category.service": "Serviço",
  "category.referral_conversion": "Conversão por indicação",
  "category.none": "Sem categoria",
  "billing.title": "Faturamento diário",
  "billing.date": "Data",
  "billing.load": "Carregar",
  "billing.category": "Categoria",
  "billing.country": "País",
  "billing.count": "Cobráveis",
  "billing.unit": "Preço unitário",
  "billing.amount": "Valor",
  "billing.revision": "Revisão {r}",
  "billing.notComputed": "Ainda não calculado",
  "billing.none": "Sem linhas para este dia.",
  "billing.loading": "Carregando…",
  "billing.noFile": "O faturamento deste dia ainda não foi calculado: não há arquivo para baixar.",
  "billing.download": "Baixar {f}",
  "billing.forbidden": "Você não tem acesso ao faturamento.",
  "notFound": "Página não encontrada",
  "notFoundHint": "Não há nada neste endereço.",
  "error.generic": "Algo deu errado. Tente de novo.",
  "error.unavailable": "Sem resposta do servidor. Tente de novo em instantes.",
  "error.forbidden": "Você não tem permissão para isso.",
  "error.rangeTooLarge": "O período pedido é longo demais.",
  "error.invalid": "Valores recusados pelo servidor:",
  "error.server": "O servidor recusou o pedido:",
} as const;

type Key = keyof typeof PT;
const EN: Record<Key, string> = {
  "app.title": "zapmeter",
  "nav.overview": "Overview",
  "nav.billing": "Billing",
  "nav.logout": "Sign out",
  "nav.language": "Português",
  "nav.theme.dark": "Dark theme",
  "nav.theme.light": "Light theme",
  "nav.skip": "Skip to content",
  "nav.back": "← Overview",
  "live.live": "Live",
  "live.connecting": "Connecting…",
  "live.offline": "Reconnecting…",
  "login.title": "Sign in to zapmeter",
  "login.email": "Email",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.failed": "Wrong email or password.",
  "login.error": "Could not sign in right now. Try again.",
  "login.invalid": "The email or password is not in a valid format.",
  "overview.title": "Notifications per client",
  "overview.search": "Search clients",
  "overview.clients": "{n} clients",
  "overview.oneClient": "1 client",
  "overview.empty": "No client matches.",
  "overview.loading": "Loading clients…",
  "col.client": "Client",
  "col.minute": "This minute",
  "col.hour": "Last 60 min",
  "col.today": "Today",
  "col.deliveryRate": "Delivered",
  "col.readRate": "Read",
  "col.trend": "60 min",
  "col.rates": "Today's rates",
  "status.accepted": "accepted",
  "status.sent": "sent",
  "status.delivered": "delivered",
  "status.read": "read",
  "status.failed": "failed",
  "client.today": "Today",
  "client.todayZone": "(client's time zone: {tz})",
  "client.chart": "Per minute, last {h} hours",
  "client.browserZone": "(your browser's local time: {tz})",
  "client.time": "Time",
  "client.report": "Export the detailed report",
  "client.from": "From",
  "client.to": "To",
  "client.format": "Format",
  "client.status": "Status",
  "client.allStatuses": "all",
  "client.download": "Download",
  "client.downloading": "Downloading…",
  "client.reportZone": "“From” and “To” are in your browser's local time ({tz}).",
  "client.csvUtc": "Times in the CSV are in UTC.",
  "client.rangeOrder": "“From” must be before “To”.",
  "client.forbidden": "You don't have access to this client.",
  "client.notFound": "Client not found.",
  "client.billing": "Billing",
  "client.byCategory": "Today by category",
  "client.deliveryRate": "Delivery rate",
  "client.readRate": "Read rate",
  "client.noCategories": "No notifications today.",
  "client.readsUncategorized": "Read receipts come without a pricing category: they count in their message's category when it was known, otherwise under “No category”.",
  "category.marketing": "Marketing",
  "category.marketing_lite": "Marketing lite",
  "category.utility": "Utility",
  "category.authentication": "Authentication",
  "category.authentication_international": "Authentication (international)",
  "category.service": "Service",
  "category.referral_conversion": "Referral conversion",
  "category.none": "No category",
  "billing.title": "Daily billing",
  "billing.date": "Date",
  "billing.load": "Load",
  "billing.category": "Category",
  "billing.country": "Country",
  "billing.count": "Billable",
  "billing.unit": "Unit price",
  "billing.amount": "Amount",
  "billing.revision": "Revision {r}",
  "billing.notComputed": "Not computed yet",
  "billing.none": "No lines for this day.",
  "billing.loading": "Loading…",
  "billing.noFile": "This day's billing has not been computed yet: there is no file to download.",
  "billing.download": "Download {f}",
  "billing.forbidden": "You don't have access to billing.",
  "notFound": "Page not found",
  "notFoundHint": "There is nothing at this address.",
  "error.generic": "Something went wrong. Try again.",
  "error.unavailable": "No answer from the server. Try again in a moment.",
  "error.forbidden": "You don't have permission for this.",
  "error.rangeTooLarge": "The requested period is too long.",
  "error.invalid": "Values the server refused:",
  "error.server": "The server refused the request:",
};

/** The message `key` in the current locale, with `{name}` placeholders filled. Reading it subscribes to the locale. */
export function t(key: Key, vars: Record<string, string | number> = {}): string {
  const text: string = locale.value === "en" ? EN[key] : PT[key];
  return text.replace(/\{(\w+)\}/g, (_, k: string) => String(vars[k] ?? ""));
}

/**
 * A pricing category's name in the current language: null (counters) and `unknown` (billing lines)
 * are events Meta sent without one; a category this page does not know yet is shown as it came.
 */
export function categoryLabel(category: string | null): string {
  if (category === null || category === "unknown") return t("category.none");
  return (CATEGORIES as readonly string[]).includes(category) ? t(`category.${category as Category}`) : category;
}

const formats = computed(() => ({
  int: new Intl.NumberFormat(locale.value),
  pct: new Intl.NumberFormat(locale.value, { style: "percent", maximumFractionDigits: 1 }),
  time: new Intl.DateTimeFormat(locale.value, { hour: "2-digit", minute: "2-digit" }),
}));

export const fmtInt = (n: number): string => formats.value.int.format(n);
/** A ratio, or an en dash when there is nothing to divide by. */
export const fmtPct = (num: number, den: number): string => (den > 0 ? formats.value.pct.format(num / den) : "–");
export const fmtTime = (ms: number): string => formats.value.time.format(ms);
/** The zone the chart's axis and the date-time inputs use: the browser's. */
export const BROWSER_TIME_ZONE = new Intl.DateTimeFormat().resolvedOptions().timeZone;

/** `YYYY-MM-DDTHH:MM` of an instant in the browser's time zone (what date and datetime inputs hold). */
export function localDateTime(ms: number): string {
  return new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}
export function fmtMoney(micros: number, currency: string): string {
  return new Intl.NumberFormat(locale.value, { style: "currency", currency, maximumFractionDigits: 6 }).format(micros / 1_000_000);
}
