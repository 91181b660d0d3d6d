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
  "login.lockedOut": "Muitas tentativas de entrar nesta conta. Tente de novo em {s} s.",
  "overview.title": "Notificações por cliente",
  "overview.search": "Buscar cliente",
  "overview.clients": "{n} clientes",
  "overview.oneClient": "1 cliente",
  "overview.empty": "Nenhum cliente encontrado.",
  "overview.noClients": "Nenhum cliente foi atribuído a você. Peça acesso a um administrador.",
  "overview.loading": "Carregando clientes…",
  "col.client": "Cliente",
  "col.minute": "Minuto atual",
  "col.hour": "Últimos 60 min",
  "col.today": "Hoje",
  "col.deliveryRate": "Entrega",
  "col.readRate": "Leitura",
  "col.trend": "60 min",
  "col.rates": "Taxas de hoje",
  "col.todayZone": "(no fuso de cada cliente)",
  "rate.deliveryHint": "Entregues (ou lidas) ÷ enviadas, hoje, até 100 %: uma leitura também é uma entrega, e uma mensagem enviada ontem pode ser entregue hoje.",
  "rate.readHint": "Lidas ÷ entregues (ou lidas), hoje: o WhatsApp não envia “entregue” para uma mensagem lida ao chegar.",
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
  "client.toExclusive": "“Até” fica fora do período. Os detalhes chegam ao relatório cerca de um minuto depois dos contadores.",
  "client.inactive": "Inativo",
  "client.rangeOrder": "“De” precisa ser antes de “Até”.",
  "client.forbidden": "Você não tem acesso a este cliente.",
  "client.notFound": "Cliente não encontrado.",
  "client.billing": "Faturamento",
  "client.byCategory": "Hoje por categoria",
  "client.deliveryRate": "Taxa de entrega",
  "client.readRate": "Taxa de leitura",
  "client.noCategories": "Nenhuma notificação hoje.",
  "client.readsUncategorized": "As confirmações de leitura e as falhas chegam sem categoria de preço: contam na categoria da mensagem quando ela já era conhecida, senão em “Sem categoria”.",
  "client.chartEmpty": "Nenhuma notificação neste período.",
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
  "billing.provisional": "Provisório: o dia ainda não tinha terminado para {n} cliente(s) quando foi calculado; as linhas deles são parciais e serão recalculadas quando o dia terminar.",
  "billing.total": "Total ({c})",
  "billing.unknownCountry": "País ZZ: mercado desconhecido (o destinatário não tinha um número identificável).",
  "billing.loading": "Carregando…",
  "billing.noFile": "O faturamento deste dia ainda não foi calculado: não há arquivo para baixar.",
  "billing.download": "Baixar {f}",
  "billing.forbidden": "Você não tem acesso ao faturamento.",
  "notFound": "Página não encontrada",
  "notFoundHint": "Não há nada neste endereço.",
  "error.generic": "Algo deu errado. Tente de novo.",
  "error.unavailable": "Sem resposta do servidor. Tente de novo em instantes.",
  "error.forbidden": "Você não tem permissão para isso.",
  "error.rangeTooLarge": "O período pedido é longo demais: no máximo {n} dias.",
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
  "login.lockedOut": "Too many sign-in attempts for this account. Try again in {s} s.",
  "overview.title": "Notifications per client",
  "overview.search": "Search clients",
  "overview.clients": "{n} clients",
  "overview.oneClient": "1 client",
  "overview.empty": "No client matches.",
  "overview.noClients": "No clients are assigned to you. Ask an administrator for access.",
  "overview.loading": "Loading clients…",
  "col.client": "Client",
  "col.minute": "This minute",
  "col.hour": "Last 60 min",
  "col.today": "Today",
  "col.deliveryRate": "Delivered",
  "col.readRate": "Read",
  "col.trend": "60 min",
  "col.rates": "Today's rates",
  "col.todayZone": "(in each client's time zone)",
  "rate.deliveryHint": "Delivered (or read) ÷ sent, today, up to 100 %: a read is a delivery too, and a message sent yesterday can be delivered today.",
  "rate.readHint": "Read ÷ delivered (or read), today: WhatsApp sends no “delivered” for a message read as it arrives.",
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
  "client.toExclusive": "“To” itself is not included. Details reach the report about a minute after the counters.",
  "client.inactive": "Inactive",
  "client.rangeOrder": "“From” must be before “To”.",
  "client.forbidden": "You don't have access to this client.",
  "client.notFound": "Client not found.",
  "client.billing": "Billing",
  "client.byCategory": "Today by category",
  "client.deliveryRate": "Delivery rate",
  "client.readRate": "Read rate",
  "client.noCategories": "No notifications today.",
  "client.readsUncategorized": "Read receipts and failures come without a pricing category: they count in their message's category when it was known, otherwise under “No category”.",
  "client.chartEmpty": "No notifications in this period.",
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
  "billing.provisional": "Provisional: the day had not ended yet for {n} client(s) when it was computed; their lines are partial and will be computed again once their day ends.",
  "billing.total": "Total ({c})",
  "billing.unknownCountry": "Country ZZ: unknown market (the recipient had no identifiable number).",
  "billing.loading": "Loading…",
  "billing.noFile": "This day's billing has not been computed yet: there is no file to download.",
  "billing.download": "Download {f}",
  "billing.forbidden": "You don't have access to billing.",
  "notFound": "Page not found",
  "notFoundHint": "There is nothing at this address.",
  "error.generic": "Something went wrong. Try again.",
  "error.unavailable": "No answer from the server. Try again in a moment.",
  "error.forbidden": "You don't have permission for this.",
  "error.rangeTooLarge": "The requested period is too long: at most {n} days.",
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
/** A ratio as a percentage, or an en dash when there was nothing to divide by. */
export const fmtPct = (ratio: number | null): string => (ratio === null ? "–" : formats.value.pct.format(ratio));
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
