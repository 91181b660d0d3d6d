import { z } from "zod";
import { COUNTRY_CODES } from "./countries.ts";
import { parseInstant } from "./time.ts";

/** Delivery states of an outbound message; `accepted` = handed to the sender (Kafka path only). */
export const STATUSES = ["accepted", "sent", "delivered", "read", "failed"] as const;
export const Status = z.enum(STATUSES);
export type Status = z.infer<typeof Status>;

/** Meta's pricing categories (per-message pricing, 2025-07). */
export const CATEGORIES = [
  "marketing",
  "marketing_lite",
  "utility",
  "authentication",
  "authentication_international",
  "service",
  "referral_conversion",
] as const;
export const Category = z.enum(CATEGORIES);
export type Category = z.infer<typeof Category>;

export const PRICING_TYPES = ["regular", "free_customer_service", "free_entry_point"] as const;
export const PricingType = z.enum(PRICING_TYPES);
export type PricingType = z.infer<typeof PricingType>;

export const Source = z.enum(["whatsapp", "kafka"]);
export type Source = z.infer<typeof Source>;

/** The longest event, message or other id kept (in characters). */
export const MAX_ID_LENGTH = 256;

/**
 * Identifiers are bounded so a hostile producer cannot bloat dedup tables or file names, and must be
 * well-formed Unicode without control characters: a lone surrogate does not survive SQLite's text
 * round trip, so dedup could not recognise the id it just stored.
 */
export const Identifier = z
  .string()
  .min(1)
  .max(MAX_ID_LENGTH)
  .refine((s) => s.isWellFormed() && !/[\u0000-\u001f\u007f]/.test(s), "must be well-formed Unicode without control characters");
/** Client ids appear in R2 keys and Durable Object names: a conservative alphabet. */
export const ClientId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "letters, digits, '_', '.', '-'");
/**
 * The recipient: E.164 digits without the plus, or Meta's business-scoped user id (BSUID) when Meta
 * withholds the phone number. Since WhatsApp usernames (2026) a status of a message to a user who
 * hides their number carries only the BSUID: the user's country, a dot, and up to 128 letters and
 * digits (`BR.1502576394655843`; `ENT.` after the country for a parent BSUID).
 */
export const Recipient = z
  .string()
  .regex(/^(?:\+?\d{6,15}|[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128})$/, "E.164 phone number (6 to 15 digits) or WhatsApp business-scoped user id (CC.digits)")
  .transform((s) => s.replace(/^\+/, ""));
// A pattern, not an enum: the field stays a string for the code that derives countries, and the
// ingest fast path (compiled-schema.ts) checks patterns itself.
export const Country = z.string().regex(new RegExp(`^(?:${COUNTRY_CODES.join("|")})$`), "an ISO 3166-1 alpha-2 country code, such as BR or GB");
/** Epoch milliseconds, bounded to 2000-01-01 .. 2100-01-01 so a typo cannot land in a far partition. */
export const EpochMs = z.number().int().min(946_684_800_000).max(4_102_444_800_000);

/**
 * How long after its receipt an event may say it happened. Producers' clocks drift by seconds; an
 * event hours ahead has a wrong clock or zone (local time sent as UTC), and would count in a day that
 * has not come yet.
 */
const MAX_AHEAD_OF_RECEIPT_MS = 60 * 60 * 1000;

/** Why `occurredAt` cannot be right for an event received at `receivedAt`, or null when it can. */
export function aheadOfReceipt(occurredAt: number, receivedAt: number): string | null {
  if (occurredAt <= receivedAt + MAX_AHEAD_OF_RECEIPT_MS) return null;
  return `occurred_at ${new Date(occurredAt).toISOString()} is more than an hour after the event was received (${new Date(receivedAt).toISOString()}): check the sender's clock and time zone`;
}

/**
 * Meta's error codes are small integers; the lake's error_code column is INT32
 * (workers/lake/columns.ts), so a code outside it is refused at ingest rather than left in an outbox
 * that could never be flushed.
 */
export const ErrorCode = z
  .number()
  .int()
  .min(-(2 ** 31))
  .max(2 ** 31 - 1);

/** The longest `error_title` kept: Meta's titles are a line; a longer one is cut, not refused. */
export const MAX_ERROR_TITLE = 1024;

/** The one event every input is normalised to (DESIGN.md, "Canonical event"). */
export const NotificationEvent = z.object({
  event_id: Identifier,
  message_id: Identifier,
  client_id: ClientId,
  status: Status,
  occurred_at: EpochMs,
  received_at: EpochMs,
  category: Category.nullable(),
  billable: z.boolean().nullable(),
  pricing_type: PricingType.nullable(),
  recipient: z.string(),
  country: Country.nullable(),
  phone_number_id: z.string().max(64).nullable(),
  template: z.string().max(512).nullable(),
  error_code: ErrorCode.nullable(),
  error_title: z.string().max(MAX_ERROR_TITLE).nullable(),
  source: Source,
});
export type NotificationEvent = z.infer<typeof NotificationEvent>;

/** Column order of the detail rows everywhere (lake, CSV, Parquet). */
export const EVENT_COLUMNS = Object.keys(NotificationEvent.shape) as (keyof NotificationEvent)[];

/**
 * occurred_at as epoch ms (number) or an ISO-8601 date-time string (DESIGN.md), read as the query
 * parameters are (`parseInstant`): `Z` or an offset, and without a zone UTC, the zone everything is
 * kept in. A date alone is refused: an event has a time. (Until 2026-12-01 a time without a zone was
 * refused, lest a producer's local time be taken as UTC; the contract says ISO-8601, which allows it,
 * and the queries read it as UTC. A local time east of UTC still shows as `occurred_in_future`.)
 */
const OccurredAt = z.union(
  [
    EpochMs,
    z
      .string()
      .transform((s, ctx) => {
        const ms = s.length > 10 ? parseInstant(s) : null;
        if (ms === null) {
          ctx.addIssue({ code: "custom", message: "invalid ISO-8601 date-time" });
          return z.NEVER;
        }
        return ms;
      })
      .pipe(EpochMs),
  ],
  { error: "must be epoch milliseconds or an ISO-8601 date-time (Z or ±hh:mm; without a zone, UTC)" },
);

/**
 * Whether an event is billable by its pricing type (Meta's `billable` is deprecated for it): `regular`
 * is billed, the free types are not. No type, or one not known here (a type Meta adds), gives no
 * answer: `billable` decides, rather than a new type silently dropping the bill.
 */
export function billableByPricingType(type: string | null | undefined): boolean | null {
  switch (type?.toLowerCase()) {
    case "regular":
      return true;
    case "free_customer_service":
    case "free_entry_point":
      return false;
    default:
      return null;
  }
}

/**
 * A Kafka-bridged record: the canonical event without received_at/source; country derived when absent.
 * Unknown fields are stripped (producers add their own). Optional fields default to null (a default,
 * not a transform: zod runs without its JIT in workerd, and eight transforms per record were a
 * noticeable part of validating a 1,000-event batch).
 */
export const BridgedEvent = NotificationEvent.omit({ received_at: true, source: true }).extend({
  occurred_at: OccurredAt,
  recipient: Recipient,
  category: NotificationEvent.shape.category.default(null),
  billable: NotificationEvent.shape.billable.default(null),
  pricing_type: NotificationEvent.shape.pricing_type.default(null),
  country: NotificationEvent.shape.country.default(null),
  phone_number_id: NotificationEvent.shape.phone_number_id.default(null),
  template: NotificationEvent.shape.template.default(null),
  error_code: NotificationEvent.shape.error_code.default(null),
  error_title: NotificationEvent.shape.error_title.default(null),
});
export type BridgedEvent = z.infer<typeof BridgedEvent>;
