/**
 * The benchmark's events, generated deterministically from (run, client, n) so every worker thread
 * and every peer (PostgreSQL, DuckDB) processes exactly the same rows.
 */
import { metaSignature } from "../scripts/demo/meta-signature.ts";
import { statusObject, webhook } from "../scripts/demo/whatsapp-payload.ts";

/** Fields of a Kafka-bridged record (DESIGN.md): the canonical event without received_at/source. */
export interface BenchEvent {
  event_id: string;
  message_id: string;
  client_id: string;
  status: "sent" | "delivered" | "read";
  occurred_at: number;
  recipient: string;
  category: "marketing" | "utility" | "authentication" | "service";
  billable: boolean;
  pricing_type: "regular" | "free_customer_service";
  country: string;
  phone_number_id: string;
  template: string;
}

const STATUSES = ["sent", "delivered", "read"] as const;
const CATEGORIES = ["marketing", "utility", "authentication", "service"] as const;

export const benchClientId = (i: number): string => `bench-${String(i).padStart(5, "0")}`;
export const benchPhone = (i: number): string => String(300_000_000_000_000 + i);

/**
 * Event `n` of a client: three statuses per message (sent, delivered, read), 5 ms apart, so a
 * 1,000-event batch spans 5 s of occurred_at like a real partition's batch.
 */
export function benchEvent(run: string, client: number, n: number, t0: number): BenchEvent {
  const message = Math.floor(n / 3);
  const status = STATUSES[n % 3]!;
  const category = CATEGORIES[message % CATEGORIES.length]!;
  const messageId = `wamid.${run}.${client}.${message}`;
  return {
    event_id: `${messageId}:${status}`,
    message_id: messageId,
    client_id: benchClientId(client),
    status,
    occurred_at: t0 + n * 5,
    recipient: `55119${String((client * 7_919 + message * 104_729) % 100_000_000).padStart(8, "0")}`,
    category,
    billable: category !== "service",
    pricing_type: category === "service" ? "free_customer_service" : "regular",
    country: "BR",
    phone_number_id: benchPhone(client),
    template: `${category}_v1`,
  };
}

/** Events [from, from + count) of a client. */
export function benchBatch(run: string, client: number, from: number, count: number, t0: number): BenchEvent[] {
  return Array.from({ length: count }, (_, i) => benchEvent(run, client, from + i, t0));
}

/** How many statuses webhook request `i` carries: 1..10, spread evenly and deterministically. */
export function webhookSize(i: number): number {
  return 1 + (Math.imul(i, 2_654_435_761) >>> 0) % 10;
}

/** A signed webhook body carrying `events` (all of one phone number) the way Meta sends them. */
export function signedWebhook(events: BenchEvent[], appSecret: string): { body: string; signature: string } {
  const statuses = events.map((e) =>
    statusObject({
      id: e.message_id,
      status: e.status,
      timestamp: Math.floor(e.occurred_at / 1000),
      recipient: e.recipient,
      category: e.category,
      pricingType: e.pricing_type,
      billable: e.billable,
    }),
  );
  const body = JSON.stringify(webhook([{ phoneNumberId: events[0]!.phone_number_id, statuses }]));
  return { body, signature: metaSignature(body, appSecret) };
}
