import { setTimeout as sleep } from "node:timers/promises";
import { DEMO_CLIENTS, type DemoClient } from "./catalog.ts";
import { metaSignature } from "./meta-signature.ts";
import { statusObject, webhook } from "./whatsapp-payload.ts";

/** A message moving through its statuses, as Meta would report them. */
interface Step {
  at: number;
  client: DemoClient;
  phoneNumberId: string;
  messageId: string;
  status: "accepted" | "sent" | "delivered" | "read" | "failed";
  recipient: string;
  category: string;
  pricingType: string;
}

/** `npm start`'s demo rate: new messages per second across all clients. */
export const DEMO_MESSAGES_PER_SECOND = 20;

export interface TrafficOptions {
  baseUrl: string;
  appSecret: string;
  ingestKey: string;
  /** New messages per second across all clients. */
  messagesPerSecond?: number;
  signal: AbortSignal;
  /** Called after each request with its outcome. */
  onResult?: (r: { path: string; status: number; events: number }) => void;
}

const CATEGORIES: [string, number][] = [
  ["marketing", 0.4],
  ["utility", 0.35],
  ["authentication", 0.2],
  ["service", 0.05],
];
const PREFIXES = ["55119", "55119", "55219", "55319", "55119", "52155", "1415", "351912"];

function pick<T>(items: [T, number][]): T {
  let r = Math.random() * items.reduce((s, [, w]) => s + w, 0);
  for (const [v, w] of items) if ((r -= w) <= 0) return v;
  return items[0]![0];
}

const weighted = DEMO_CLIENTS.map((c) => [c, c.weight] as [DemoClient, number]);
let seq = 0;

/** Schedules the whole life of one new message: accepted (Kafka, half of them), sent, then delivered/read or failed. */
function newMessage(now: number): Step[] {
  const client = pick(weighted);
  const category = pick(CATEGORIES);
  const base = {
    client,
    phoneNumberId: client.phoneNumberIds[seq % client.phoneNumberIds.length]!,
    messageId: `wamid.DEMO${now.toString(36)}${(seq++).toString(36)}`,
    recipient: `${PREFIXES[seq % PREFIXES.length]}${String(Math.floor(Math.random() * 1e7)).padStart(7, "0")}`,
    category,
    pricingType: category === "service" ? "free_customer_service" : "regular",
  };
  const steps: Step[] = [];
  if (Math.random() < 0.5) steps.push({ ...base, at: now, status: "accepted" });
  const sent = now + 300 + Math.random() * 1500;
  steps.push({ ...base, at: sent, status: "sent" });
  if (Math.random() < 0.05) return [...steps, { ...base, at: sent + 1000 + Math.random() * 5000, status: "failed" }];
  const delivered = sent + 500 + Math.random() * 8000;
  steps.push({ ...base, at: delivered, status: "delivered" });
  if (Math.random() < 0.6) steps.push({ ...base, at: delivered + 2000 + Math.random() * 30_000, status: "read" });
  return steps;
}

function toStatus(s: Step): Record<string, unknown> {
  return statusObject({
    id: s.messageId,
    status: s.status,
    timestamp: Math.floor(s.at / 1000),
    recipient: s.recipient,
    ...(s.status === "read" ? {} : { category: s.category, billable: s.pricingType === "regular", pricingType: s.pricingType }),
    ...(s.status === "failed" ? { errors: [{ code: 131026, title: "Message undeliverable" }] } : {}),
  });
}

/**
 * Sends realistic traffic until `signal` aborts: signed webhooks (1–10 statuses each, ~3% re-sent as
 * Meta does on retries) and Kafka-style batches of `accepted` events through the bridge endpoint.
 */
export async function runDemoTraffic(o: TrafficOptions): Promise<void> {
  const rate = o.messagesPerSecond ?? DEMO_MESSAGES_PER_SECOND;
  let pending: Step[] = [];
  const tickMs = 250;
  while (!o.signal.aborted) {
    const now = Date.now();
    const births = Math.floor(rate * (tickMs / 1000) + Math.random());
    for (let i = 0; i < births; i++) pending.push(...newMessage(now));
    const due = pending.filter((s) => s.at <= now);
    pending = pending.filter((s) => s.at > now);

    const accepted = due.filter((s) => s.status === "accepted");
    const statuses = due.filter((s) => s.status !== "accepted");
    const requests: Promise<void>[] = [];
    if (accepted.length > 0) requests.push(sendBatch(o, accepted));
    const byPhone = new Map<string, Step[]>();
    for (const s of statuses) byPhone.set(s.phoneNumberId, [...(byPhone.get(s.phoneNumberId) ?? []), s]);
    for (const [phoneNumberId, steps] of byPhone) {
      for (let i = 0; i < steps.length; i += 10) {
        const chunk = steps.slice(i, i + 10);
        requests.push(sendWebhook(o, phoneNumberId, chunk));
        if (Math.random() < 0.03) requests.push(sendWebhook(o, phoneNumberId, chunk));
      }
    }
    await Promise.allSettled(requests);
    await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - now))));
  }
}

async function sendWebhook(o: TrafficOptions, phoneNumberId: string, steps: Step[]): Promise<void> {
  const body = JSON.stringify(webhook([{ phoneNumberId, statuses: steps.map(toStatus) }]));
  await post(o, "/v1/webhooks/whatsapp", body, { "x-hub-signature-256": metaSignature(body, o.appSecret) }, steps.length);
}

async function sendBatch(o: TrafficOptions, steps: Step[]): Promise<void> {
  const events = steps.map((s) => ({
    event_id: `${s.messageId}:accepted`,
    message_id: s.messageId,
    client_id: s.client.id,
    status: "accepted",
    occurred_at: new Date(s.at).toISOString(),
    recipient: s.recipient,
    category: s.category,
    pricing_type: s.pricingType,
    phone_number_id: s.phoneNumberId,
    template: `demo_${s.category}`,
  }));
  await post(o, "/v1/ingest/events", JSON.stringify({ events }), { authorization: `Bearer ${o.ingestKey}` }, events.length);
}

/**
 * Waits before each retry of a request that may succeed later (no answer, 429, 5xx), as Meta and
 * the Kafka sinks retry: a stack that reloads (a rebuilt dashboard, an edited Worker) or restarts
 * loses no demo events. A request still failing after these is reported with its last status.
 */
const RETRY_DELAYS_MS = [1_000, 2_000, 4_000];

async function post(o: TrafficOptions, path: string, body: string, headers: Record<string, string>, events: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const status = await postOnce(o, path, body, headers);
    if (o.signal.aborted) return;
    const retryable = status === 0 || status === 429 || status >= 500;
    const delay = RETRY_DELAYS_MS[attempt];
    if (!retryable || delay === undefined) {
      o.onResult?.({ path, status, events });
      return;
    }
    await sleep(delay, undefined, { signal: o.signal }).catch(() => undefined);
  }
}

/** One try: the answer's status, or 0 when none came (a refused connection while the stack restarts). */
async function postOnce(o: TrafficOptions, path: string, body: string, headers: Record<string, string>): Promise<number> {
  try {
    const res = await fetch(`${o.baseUrl}${path}`, { method: "POST", body, headers: { "content-type": "application/json", ...headers }, signal: o.signal });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}
