import {
  CATEGORIES,
  EpochMs,
  Identifier,
  MAX_ERROR_TITLE,
  MAX_ID_LENGTH,
  PRICING_TYPES,
  aheadOfReceipt,
  billableByPricingType,
  Recipient,
  type Category,
  type NotificationEvent,
  type PricingType,
  type Status,
} from "../../schema/event.ts";
import { StatusError, WHATSAPP_OBJECT, WhatsAppChange, WhatsAppEntry, WhatsAppStatus, WhatsAppValue, WhatsAppWebhook } from "../../schema/whatsapp.ts";
import type { Rejection } from "../../schema/api.ts";
import { fieldIssues, type FieldIssue } from "../../schema/issues.ts";
import { countryOf } from "./country.ts";
import { jsonSyntaxError } from "../json-syntax.ts";
import type { UnlistedPricing } from "./unlisted-pricing.ts";

/** A status from the webhook, normalised but not yet assigned to a client. */
export interface PendingStatus {
  phoneNumberId: string;
  path: string;
  event: Omit<NotificationEvent, "client_id">;
}

export interface ParsedWebhook {
  statuses: PendingStatus[];
  /**
   * Acknowledged but not counted: inbound messages, other webhook fields, statuses of kinds we do not
   * count, entries of other objects, and what is in `rejected`.
   */
  ignored: number;
  /** What we could not use (malformed, of an unknown kind, stamped in the future); it goes to the dead-letter store. */
  rejected: Rejection[];
  /** Pricing values Meta sent that this build does not list, for the log: the statuses count without them. */
  unlisted: UnlistedPricing[];
}

/** Statuses we count. */
const COUNTED: ReadonlySet<string> = new Set<Status>(["sent", "delivered", "read", "failed"]);
/**
 * Statuses Meta documents that we do not count (a voice message played, a message deleted, a catalog
 * warning): acknowledged and let go. Any other status is kept in the DLQ, since it may be a new kind
 * of status worth counting.
 */
const KNOWN_UNCOUNTED: ReadonlySet<string> = new Set(["played", "deleted", "warning"]);
/** A group's statuses that are always a member's copy (the group's own are its `sent` and `failed`). */
const MEMBER_STATUSES: ReadonlySet<string> = new Set(["delivered", "read"]);

export class MalformedWebhook extends Error {
  constructor(readonly issues: FieldIssue[]) {
    super("malformed webhook payload");
  }

  /** The issues as the dead-letter store records them. */
  get rejections(): Rejection[] {
    return malformed(this.issues);
  }
}

function malformed(issues: FieldIssue[]): Rejection[] {
  return issues.map((i) => ({ at: i.path, code: "malformed", message: i.message }));
}

function enumOrNull<T extends string>(values: readonly T[], v: string | undefined): T | null {
  return v !== undefined && (values as readonly string[]).includes(v) ? (v as T) : null;
}

/**
 * Meta's `billable` is deprecated but still sent; the pricing type, its successor, decides when it
 * says a message is free (a stale `billable: true` beside `free_customer_service` must not bill),
 * and when `billable` is absent.
 */
function billableOf(pricing: WhatsAppStatus["pricing"]): boolean | null {
  const byType = billableByPricingType(pricing?.type);
  if (byType === false) return false;
  return typeof pricing?.billable === "boolean" ? pricing.billable : byType;
}

/** `parseWebhook` of a raw body; a body that is not JSON, or that the parser chokes on, is malformed too. */
export function parseWebhookText(text: string, receivedAt: number): ParsedWebhook {
  try {
    return parseWebhook(JSON.parse(text), receivedAt);
  } catch (e) {
    throw e instanceof MalformedWebhook ? e : new MalformedWebhook([{ path: "", message: e instanceof SyntaxError ? jsonSyntaxError(e) : (e as Error).message }]);
  }
}

/**
 * Who a status is about, and the message it counts and bills as. One-to-one: the phone number, or the
 * BSUID when Meta withheld the number (usernames). In a group, Meta reports each member's copy
 * (`recipient_participant_id`, or `recipient_participant_user_id` for a member behind a username)
 * and bills each delivered copy at the member's country rate, so a member's copy is a message of its
 * own, `${wamid}:${member}`; a status of the whole group (a `sent` or `failed` without a member) is
 * the group's, with the group id as its recipient. Undefined when the status names no recipient we
 * can use: a member we cannot read, or a delivered/read without one, which is always a member's (as
 * the group's, every member's would be one event, all but the first dropped as its duplicates).
 */
function addresseeOf(s: WhatsAppStatus): { recipient: string; messageId: string } | undefined {
  const asRecipient = (v: string | undefined) => {
    const r = Recipient.safeParse(v);
    return r.success ? r.data : undefined;
  };
  if (s.recipient_type === "group") {
    const member = asRecipient(s.recipient_participant_id) ?? asRecipient(s.recipient_participant_user_id);
    if (member !== undefined) return { recipient: member, messageId: `${s.id}:${member}` };
    const named = s.recipient_participant_id !== undefined || s.recipient_participant_user_id !== undefined;
    const group = Identifier.safeParse(s.recipient_id);
    return group.success && !named && !MEMBER_STATUSES.has(s.status) ? { recipient: group.data, messageId: s.id } : undefined;
  }
  const recipient = asRecipient(s.recipient_id) ?? asRecipient(s.recipient_user_id);
  return recipient === undefined ? undefined : { recipient, messageId: s.id };
}

/**
 * Parses a webhook body into normalised statuses; tolerates every field Meta adds. MalformedWebhook
 * only when the body is not a notification envelope (`object`, `entry`). Inside one, whatever lacks
 * what we need (an entry, a change's value, a status) is rejected on its own and kept for the DLQ,
 * and the rest is counted: Meta retries a refused notification for days with the same bytes, so a
 * refusal would bring each one back for a week and count nothing more. Notifications of another
 * object (Messenger, Instagram: the same app, hence the same signature) are acknowledged unread.
 */
export function parseWebhook(payload: unknown, receivedAt: number): ParsedWebhook {
  const envelope = WhatsAppWebhook.safeParse(payload);
  if (!envelope.success) throw new MalformedWebhook(fieldIssues(envelope.error));
  const out: ParsedWebhook = { statuses: [], ignored: 0, rejected: [], unlisted: [] };
  if (envelope.data.object !== WHATSAPP_OBJECT) {
    out.ignored = envelope.data.entry.length;
    return out;
  }
  /**
   * `sent` read as one of `values` (after `spelled`), else null; a value that is not one of them (a
   * category or type Meta added) is noted, so the log names what the enums lack.
   */
  const listed = <T extends string>(field: UnlistedPricing["field"], values: readonly T[], sent: string | undefined, spelled: string | undefined): T | null => {
    const value = enumOrNull<T>(values, spelled);
    if (value === null && sent !== undefined) out.unlisted.push({ field, value: sent });
    return value;
  };
  /** An entry, a change's value or a status we cannot read: acknowledged, and kept with all its issues. */
  const unreadable = (found: { path: string; message: string }[]) => {
    out.ignored++;
    out.rejected.push(...malformed(found));
  };

  envelope.data.entry.forEach((rawEntry, ei) => {
    const entry = WhatsAppEntry.safeParse(rawEntry);
    if (!entry.success) {
      unreadable(fieldIssues(entry.error, `entry.${ei}`));
      return;
    }
    entry.data.changes.forEach((rawChange, ci) => {
      const change = WhatsAppChange.safeParse(rawChange);
      if (!change.success) {
        unreadable(fieldIssues(change.error, `entry.${ei}.changes.${ci}`));
        return;
      }
      const base = `entry.${ei}.changes.${ci}.value`;
      if (change.data.field !== "messages") {
        out.ignored++;
        return;
      }
      const value = WhatsAppValue.safeParse(change.data.value);
      if (!value.success) {
        unreadable(fieldIssues(value.error, base));
        return;
      }
      const inbound = (change.data.value as { messages?: unknown }).messages;
      if (Array.isArray(inbound)) out.ignored += inbound.length;
      const phoneNumberId = value.data.metadata.phone_number_id;
      (value.data.statuses ?? []).forEach((raw, si) => {
        const path = `${base}.statuses.${si}`;
        const status = WhatsAppStatus.safeParse(raw);
        if (!status.success) {
          unreadable(fieldIssues(status.error, path));
          return;
        }
        const s = status.data;
        // Before anything else is asked of it: replay could never resolve it (a `deleted` names no recipient).
        if (KNOWN_UNCOUNTED.has(s.status)) {
          out.ignored++;
          return;
        }
        const addressee = addresseeOf(s);
        if (addressee === undefined) {
          unreadable([{ path: `${path}.recipient_id`, message: "no E.164 phone number or business-scoped user id (recipient_user_id) for the recipient, nor a group member (recipient_participant_id or recipient_participant_user_id), which a group's delivered and read name" }]);
          return;
        }
        const { recipient, messageId } = addressee;
        const occurredAt = Number(s.timestamp) * 1000;
        if (!EpochMs.safeParse(occurredAt).success) {
          unreadable([{ path: `${path}.timestamp`, message: "timestamp outside 2000..2100" }]);
          return;
        }
        const ahead = aheadOfReceipt(occurredAt, receivedAt);
        if (ahead) {
          // Well-formed, but a wrong clock: kept like a status we do not count, whatever its neighbours.
          out.ignored++;
          out.rejected.push({ at: `${path}.timestamp`, code: "occurred_in_future", message: ahead });
          return;
        }
        if (!COUNTED.has(s.status)) {
          out.ignored++;
          out.rejected.push({ at: path, code: "unsupported_status", message: `status "${s.status}" is not counted` });
          return;
        }
        const eventId = `${messageId}:${s.status}`;
        if (eventId.length > MAX_ID_LENGTH) {
          unreadable([{ path: `${path}.id`, message: "the message id, with its group member and status, is longer than an event id's 256 characters" }]);
          return;
        }
        const error = s.status === "failed" && s.errors?.[0] !== undefined ? StatusError.safeParse(s.errors[0]) : undefined;
        if (error?.success === false) {
          unreadable(fieldIssues(error.error, `${path}.errors.0`));
          return;
        }
        const firstError = error?.data;
        out.statuses.push({
          phoneNumberId,
          path,
          event: {
            event_id: eventId,
            message_id: messageId,
            status: s.status as Status,
            occurred_at: occurredAt,
            received_at: receivedAt,
            // Meta's older references spell some categories with a hyphen (`authentication-international`);
            // case, as for the type, carries no meaning.
            category: listed<Category>("category", CATEGORIES, s.pricing?.category, s.pricing?.category?.toLowerCase().replaceAll("-", "_")),
            billable: billableOf(s.pricing),
            pricing_type: listed<PricingType>("pricing_type", PRICING_TYPES, s.pricing?.type, s.pricing?.type?.toLowerCase()),
            recipient,
            country: countryOf(recipient),
            phone_number_id: phoneNumberId,
            template: null,
            error_code: firstError?.code ?? null,
            // Held to the canonical event's bound: cut, so the status still counts (its error code says the rest).
            error_title: firstError ? ((firstError.title ?? firstError.message)?.slice(0, MAX_ERROR_TITLE) ?? null) : null,
            source: "whatsapp",
          },
        });
      });
    });
  });
  return out;
}
