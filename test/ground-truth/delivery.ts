import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { hmacSha256, toHex } from "../../workers/auth/crypto.ts";
import { int, pick, prng, shuffle, type GroundTruth, type TruthEvent } from "./model.ts";

/**
 * How the ground truth reaches zapmeter: every event 1–3 times, shuffled across requests and across
 * the two ingest paths (signed webhook, Kafka bridge), so statuses arrive out of order, read before
 * delivered, and days late. Pure and seeded like the truth itself.
 */

export type Delivery =
  | { kind: "webhook"; events: TruthEvent[] }
  | { kind: "kafka"; events: TruthEvent[]; format: "array" | "envelope" | "ndjson" | "connect" };

export interface PlanStats {
  /** Event copies sent (each distinct event 1–3 times). */
  copies: number;
  requests: number;
}

/** Up to this many copies per request (a request may hold the same event twice). */
const MAX_BATCH = 40;

/** The requests that deliver `truth`, in sending order. */
export function deliveryPlan(truth: GroundTruth, seed = truth.seed + 1): { deliveries: Delivery[]; stats: PlanStats } {
  const rng = prng(seed);
  const copies: { event: TruthEvent; path: "webhook" | "kafka" }[] = [];
  for (const event of truth.events) {
    const n = 1 + int(rng, 3);
    for (let i = 0; i < n; i++) {
      // `accepted` exists only on the Kafka path (DESIGN.md); the rest take either.
      copies.push({ event, path: event.status === "accepted" || rng() < 0.5 ? "kafka" : "webhook" });
    }
  }
  shuffle(rng, copies);
  const deliveries: Delivery[] = [];
  const open = { webhook: [] as TruthEvent[], kafka: [] as TruthEvent[] };
  const target = { webhook: 1 + int(rng, MAX_BATCH), kafka: 1 + int(rng, MAX_BATCH) };
  const emit = (path: "webhook" | "kafka") => {
    const events = open[path];
    if (events.length === 0) return;
    deliveries.push(
      path === "webhook" ? { kind: "webhook", events } : { kind: "kafka", events, format: pick(rng, ["array", "envelope", "ndjson", "connect"] as const) },
    );
    open[path] = [];
    target[path] = 1 + int(rng, MAX_BATCH);
  };
  for (const c of copies) {
    open[c.path].push(c.event);
    if (open[c.path].length >= target[c.path]) emit(c.path);
  }
  emit("webhook");
  emit("kafka");
  return { deliveries, stats: { copies: copies.length, requests: deliveries.length } };
}

/** One webhook body (Meta's sample shape) with a change per phone number, in the events' order. */
export function webhookBody(events: TruthEvent[], phoneOf: (clientId: string) => string): string {
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const e of events) {
    const phone = phoneOf(e.client_id);
    let list = groups.get(phone);
    if (!list) groups.set(phone, (list = []));
    list.push(
      statusObject({
        id: e.message_id,
        status: e.status,
        timestamp: e.occurred_at / 1000,
        recipient: e.recipient,
        category: e.category ?? undefined,
        billable: e.billable ?? undefined,
        pricingType: e.pricing_type ?? undefined,
        errors: e.error_code === null ? undefined : [{ code: e.error_code, title: e.error_title ?? "" }],
      }),
    );
  }
  return JSON.stringify(webhook([...groups].map(([phoneNumberId, statuses]) => ({ phoneNumberId, statuses }))));
}

/** Bridged records leave `country` out: the ingest derives it, as for the webhook. */
function kafkaBody(d: Extract<Delivery, { kind: "kafka" }>): { body: string; contentType: string } {
  switch (d.format) {
    case "array":
      return { body: JSON.stringify(d.events), contentType: "application/json" };
    case "envelope":
      return { body: JSON.stringify({ events: d.events }), contentType: "application/json" };
    case "ndjson":
      return { body: d.events.map((e) => JSON.stringify(e)).join("\n"), contentType: "application/x-ndjson" };
    case "connect":
      return {
        body: JSON.stringify(d.events.map((e, i) => ({ topic: "whatsapp-status", partition: 0, offset: i, key: e.message_id, value: JSON.stringify(e) }))),
        contentType: "application/json",
      };
  }
}

export interface Credentials {
  appSecret: string;
  ingestKey: string;
  phoneOf: (clientId: string) => string;
}

/** The HTTP request of a delivery: path and init, signed or keyed as the real sender does. */
export async function toRequest(d: Delivery, creds: Credentials): Promise<{ path: string; init: RequestInit }> {
  if (d.kind === "webhook") {
    const body = webhookBody(d.events, creds.phoneOf);
    const signature = `sha256=${toHex(await hmacSha256(creds.appSecret, body))}`;
    return {
      path: "/v1/webhooks/whatsapp",
      init: { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": signature }, body },
    };
  }
  const { body, contentType } = kafkaBody(d);
  return {
    path: "/v1/ingest/events",
    init: { method: "POST", headers: { "content-type": contentType, authorization: `Bearer ${creds.ingestKey}` }, body },
  };
}
