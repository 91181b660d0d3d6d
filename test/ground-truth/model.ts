/**
 * The ground truth of a fault run: a pure, seeded generator of distinct WhatsApp status events and of
 * what zapmeter must report for them. It is written from the rules in DESIGN.md, not from the code
 * under test (time zones through Intl, countries from a fixed table), so the two can disagree.
 * Shared by the workerd invariant tests and the chaos runner (scripts/chaos/).
 */

export const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

/** Mulberry32: small, fast and reproducible; a failing run prints its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rng = () => number;
export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, list: readonly T[]): T => list[int(rng, list.length)]!;

export function shuffle<T>(rng: Rng, list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = int(rng, i + 1);
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

export type TruthStatus = "accepted" | "sent" | "delivered" | "read" | "failed";
export const TRUTH_STATUSES: readonly TruthStatus[] = ["accepted", "sent", "delivered", "read", "failed"];

export interface TruthClient {
  id: string;
  timezone: string;
  phoneNumberId: string;
}

/** One distinct event, in the bridged (Kafka) shape; the webhook shape is derived from it. */
export interface TruthEvent {
  event_id: string;
  message_id: string;
  client_id: string;
  status: TruthStatus;
  occurred_at: number;
  recipient: string;
  category: string | null;
  billable: boolean | null;
  pricing_type: string | null;
  error_code: number | null;
  error_title: string | null;
}

export type StatusCounts = Record<TruthStatus, number>;

export interface GroundTruth {
  seed: number;
  clients: TruthClient[];
  events: TruthEvent[];
  /** Per client: minute (epoch ms) → counts by status. */
  minutes: Map<string, Map<number, StatusCounts>>;
  /** Per client: local day → `category|country` → billable messages. */
  billable: Map<string, Map<string, Map<string, number>>>;
  /** The local days (per client) the events fall on; billing is checked for each. */
  days: Map<string, string[]>;
  /** [from, to) covering every occurred_at. */
  range: [number, number];
}

/** Recipients with the billing market DESIGN.md says they have (ISO country of the E.164 number). */
const RECIPIENTS = [
  { recipient: "5511987654321", country: "BR" },
  { recipient: "14155552671", country: "US" },
  { recipient: "919876543210", country: "IN" },
  { recipient: "5215512345678", country: "MX" },
  { recipient: "4915123456789", country: "DE" },
] as const;
const COUNTRY = new Map<string, string>(RECIPIENTS.map((r) => [r.recipient, r.country]));

const PAID = ["marketing", "utility", "authentication"] as const;

export function emptyCounts(): StatusCounts {
  return { accepted: 0, sent: 0, delivered: 0, read: 0, failed: 0 };
}

/** `YYYY-MM-DD` of `ms` in `timeZone`, straight from Intl. */
export function dayIn(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
}

export interface TruthOptions {
  seed: number;
  clients: TruthClient[];
  /** UTC date of the first day events occur on; they span `spanDays` days from there. */
  startDay: string;
  spanDays: number;
  messagesPerClient: number;
}

/** One message's statuses: the lifecycle plus the orderings and gaps Meta really produces. */
function messageEvents(rng: Rng, client: TruthClient, messageId: string, t0: number): TruthEvent[] {
  const { recipient } = pick(rng, RECIPIENTS);
  const kind = rng();
  const pricing =
    kind < 0.7
      ? { category: pick(rng, PAID), billable: true, pricing_type: "regular" }
      : kind < 0.85
        ? { category: "service", billable: false, pricing_type: "free_customer_service" }
        : null;
  const base = { message_id: messageId, client_id: client.id, recipient, error_code: null, error_title: null };
  const ev = (status: TruthStatus, at: number, p = pricing): TruthEvent => ({
    ...base,
    event_id: `${messageId}:${status}`,
    status,
    occurred_at: at - (at % 1_000), // Meta's timestamps are whole seconds
    category: p?.category ?? null,
    billable: p?.billable ?? null,
    pricing_type: p?.pricing_type ?? null,
  });
  const out: TruthEvent[] = [];
  if (rng() < 0.3) out.push(ev("accepted", t0 - 1_000 - int(rng, 2_000)));
  if (pricing === null) {
    // The message failed (Meta sends no pricing on the failure), sometimes after a priced `sent`.
    if (rng() < 0.5) out.push(ev("sent", t0, { category: "utility", billable: true, pricing_type: "regular" }));
    out.push({ ...ev("failed", t0 + 1_000 + int(rng, 30_000), null), error_code: 131026, error_title: "Message undeliverable" });
    return out;
  }
  out.push(ev("sent", t0));
  const deliveredAt = t0 + 1_000 + int(rng, 120_000);
  const r = rng();
  // 10%: the delivery receipt never comes, the read does (billed on the read).
  if (r >= 0.1) out.push(ev("delivered", deliveredAt));
  if (r < 0.1 || rng() < 0.5) {
    // 15% of reads carry a timestamp before the delivery's (device clocks): the read is the earliest.
    const readAt = rng() < 0.15 ? deliveredAt - 1_000 - int(rng, 60_000) : deliveredAt + int(rng, 3_600_000);
    out.push(ev("read", readAt));
  }
  return out;
}

/** The distinct events and the expected counters and billing, from `seed`. */
export function groundTruth(opts: TruthOptions): GroundTruth {
  const rng = prng(opts.seed);
  const start = Date.parse(`${opts.startDay}T00:00:00Z`);
  const events: TruthEvent[] = [];
  for (const client of opts.clients) {
    for (let n = 0; n < opts.messagesPerClient; n++) {
      let t0 = start + int(rng, opts.spanDays * DAY_MS - 2 * 3_600_000);
      // 15% near the client's local midnight, so statuses of one message straddle two billing days.
      if (rng() < 0.15) t0 = nextLocalMidnight(t0, client.timezone) - int(rng, 180_000);
      events.push(...messageEvents(rng, client, `wamid.${opts.seed}.${client.id}.${n}`, t0));
    }
  }
  return { seed: opts.seed, clients: opts.clients, events, ...expected(opts.clients, events) };
}

/** First instant after `ms` where the local date in `timeZone` changes (to the second). */
function nextLocalMidnight(ms: number, timeZone: string): number {
  const day = dayIn(ms, timeZone);
  let lo = ms;
  let hi = ms + DAY_MS + 3_600_000;
  while (hi - lo > 1_000) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayIn(mid, timeZone) === day) lo = mid;
    else hi = mid;
  }
  return hi - (hi % 1_000);
}

function expected(clients: TruthClient[], events: TruthEvent[]): Omit<GroundTruth, "seed" | "clients" | "events"> {
  const tz = new Map(clients.map((c) => [c.id, c.timezone]));
  const minutes = new Map<string, Map<number, StatusCounts>>();
  const firstBillable = new Map<string, TruthEvent>();
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    let perClient = minutes.get(e.client_id);
    if (!perClient) minutes.set(e.client_id, (perClient = new Map()));
    const minute = e.occurred_at - (e.occurred_at % MINUTE_MS);
    let counts = perClient.get(minute);
    if (!counts) perClient.set(minute, (counts = emptyCounts()));
    counts[e.status] += 1;
    from = Math.min(from, e.occurred_at);
    to = Math.max(to, e.occurred_at + 1);
    // DESIGN.md: billed once, on the earliest delivered/read with billable pricing.
    if ((e.status === "delivered" || e.status === "read") && e.billable === true) {
      const key = `${e.client_id}\u0000${e.message_id}`;
      const prev = firstBillable.get(key);
      if (!prev || e.occurred_at < prev.occurred_at) firstBillable.set(key, e);
    }
  }
  const billable = new Map<string, Map<string, Map<string, number>>>();
  for (const e of firstBillable.values()) {
    const day = dayIn(e.occurred_at, tz.get(e.client_id)!);
    let perClient = billable.get(e.client_id);
    if (!perClient) billable.set(e.client_id, (perClient = new Map()));
    let lines = perClient.get(day);
    if (!lines) perClient.set(day, (lines = new Map()));
    const k = `${e.category}|${COUNTRY.get(e.recipient)}`;
    lines.set(k, (lines.get(k) ?? 0) + 1);
  }
  const days = new Map<string, string[]>();
  for (const c of clients) {
    const list: string[] = [];
    for (let d = dayIn(from, c.timezone); d <= dayIn(to, c.timezone); d = nextDate(d)) list.push(d);
    days.set(c.id, list);
  }
  return { minutes, billable, days, range: [from - (from % MINUTE_MS), to - (to % MINUTE_MS) + MINUTE_MS] };
}

export function nextDate(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
}
