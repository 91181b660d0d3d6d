import { z } from "zod";
import {
  CATEGORIES,
  EpochMs,
  PRICING_TYPES,
  billableByPricingType,
  Recipient,
  type Category,
  type NotificationEvent,
  type PricingType,
  type Status,
} from "../../schema/event.ts";
import { WhatsAppStatus, WhatsAppValue, WhatsAppWebhook } from "../../schema/whatsapp.ts";
import type { Rejection } from "./dead-letters.ts";
import { countryOf } from "./country.ts";

/** A status from the webhook, normalised but not yet assigned to a client. */
export interface PendingStatus {
  phoneNumberId: string;
  path: string;
  event: Omit<NotificationEvent, "client_id">;
}

export interface ParsedWebhook {
  statuses: PendingStatus[];
  /** Acknowledged but not counted: inbound messages, other webhook fields, unsupported statuses. */
  ignored: number;
  /** Statuses we could not use; they go to the dead-letter store. */
  unsupported: Rejection[];
}

/** Statuses we count. Meta also sends e.g. `deleted` or `warning`, which are kept in the DLQ instead. */
const COUNTED: ReadonlySet<string> = new Set<Status>(["sent", "delivered", "read", "failed"]);

export class MalformedWebhook extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super("malformed webhook payload");
  }

  /** The issues as the dead-letter store records them. */
  get rejections(): Rejection[] {
    return this.issues.map((i) => ({ at: i.path, code: "malformed", message: i.message }));
  }
}

function enumOrNull<T extends string>(values: readonly T[], v: string | undefined): T | null {
  return v !== undefined && (values as readonly string[]).includes(v) ? (v as T) : null;
}

function issues(prefix: string, error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: [prefix, ...i.path].filter((p) => p !== "").join("."), message: i.message }));
}

/** Meta's `billable` is deprecated but still sent; when absent, the pricing type says. */
function billableOf(pricing: WhatsAppStatus["pricing"]): boolean | null {
  return typeof pricing?.billable === "boolean" ? pricing.billable : billableByPricingType(pricing?.type);
}

/** `parseWebhook` of a raw body; a body that is not JSON, or that the parser chokes on, is malformed too. */
export function parseWebhookText(text: string, receivedAt: number): ParsedWebhook {
  try {
    return parseWebhook(JSON.parse(text), receivedAt);
  } catch (e) {
    throw e instanceof MalformedWebhook ? e : new MalformedWebhook([{ path: "", message: (e as Error).message }]);
  }
}

/**
 * Parses a webhook body into normalised statuses. Throws MalformedWebhook when the envelope or a
 * status lacks what we need; tolerates every field Meta adds.
 */
export function parseWebhook(payload: unknown, receivedAt: number): ParsedWebhook {
  const envelope = WhatsAppWebhook.safeParse(payload);
  if (!envelope.success) throw new MalformedWebhook(issues("", envelope.error));
  const out: ParsedWebhook = { statuses: [], ignored: 0, unsupported: [] };
  const problems: { path: string; message: string }[] = [];

  envelope.data.entry.forEach((entry, ei) => {
    entry.changes.forEach((change, ci) => {
      const base = `entry.${ei}.changes.${ci}.value`;
      if (change.field !== "messages") {
        out.ignored++;
        return;
      }
      const value = WhatsAppValue.safeParse(change.value);
      if (!value.success) {
        problems.push(...issues(base, value.error));
        return;
      }
      const inbound = (change.value as { messages?: unknown }).messages;
      if (Array.isArray(inbound)) out.ignored += inbound.length;
      const phoneNumberId = value.data.metadata.phone_number_id;
      (value.data.statuses ?? []).forEach((raw, si) => {
        const path = `${base}.statuses.${si}`;
        const status = WhatsAppStatus.safeParse(raw);
        if (!status.success) {
          problems.push(...issues(path, status.error));
          return;
        }
        const s = status.data;
        const recipient = Recipient.safeParse(s.recipient_id);
        if (!recipient.success) {
          problems.push(...issues(`${path}.recipient_id`, recipient.error));
          return;
        }
        const occurredAt = Number(s.timestamp) * 1000;
        if (!EpochMs.safeParse(occurredAt).success) {
          problems.push({ path: `${path}.timestamp`, message: "timestamp outside 2000..2100" });
          return;
        }
        if (!COUNTED.has(s.status)) {
          out.ignored++;
          out.unsupported.push({ at: path, code: "unsupported_status", message: `status "${s.status}" is not counted` });
          return;
        }
        const firstError = s.status === "failed" ? s.errors?.[0] : undefined;
        out.statuses.push({
          phoneNumberId,
          path,
          event: {
            event_id: `${s.id}:${s.status}`,
            message_id: s.id,
            status: s.status as Status,
            occurred_at: occurredAt,
            received_at: receivedAt,
            category: enumOrNull<Category>(CATEGORIES, s.pricing?.category),
            billable: billableOf(s.pricing),
            pricing_type: enumOrNull<PricingType>(PRICING_TYPES, s.pricing?.type),
            recipient: recipient.data,
            country: countryOf(recipient.data),
            phone_number_id: phoneNumberId,
            template: null,
            error_code: firstError?.code ?? null,
            error_title: firstError ? (firstError.title ?? firstError.message ?? null) : null,
            source: "whatsapp",
          },
        });
      });
    });
  });
  if (problems.length > 0) throw new MalformedWebhook(problems);
  return out;
}
