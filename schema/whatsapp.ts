import { z } from "zod";
import { ErrorCode, Identifier } from "./event.ts";

/**
 * WhatsApp Cloud API webhook payload (object "whatsapp_business_account").
 * Objects are loose: Meta adds fields over time and we must not reject them. Only what we
 * need is required; everything else we read is optional.
 */
const Pricing = z.looseObject({
  billable: z.boolean().optional(),
  pricing_model: z.string().optional(),
  category: z.string().optional(),
  type: z.string().optional(),
});

/**
 * Meta documents a number here and a string for a status's timestamp; a field sent in the other form
 * is the same value, and refusing it would leave the status uncounted (dead-lettered).
 */
const NumberInDigits = z.string().regex(/^-?\d{1,12}$/, "a whole number");

/** A failed status's error; only a `failed` status's are read, so only theirs can make it unreadable. */
export const StatusError = z.looseObject({
  code: z.union([ErrorCode, NumberInDigits.transform(Number).pipe(ErrorCode)]),
  title: z.string().optional(),
  message: z.string().optional(),
});

export const WhatsAppStatus = z.looseObject({
  id: Identifier,
  status: z.string().min(1),
  timestamp: z.union([z.string().regex(/^\d{1,12}$/, "unix seconds"), z.number().int().min(0)]),
  // A phone number or, for a message to a group, the group's id; Meta omits it when the user hides
  // their number behind a username, and `recipient_user_id` (their BSUID) is then the one to use.
  recipient_id: z.string().min(1).optional(),
  recipient_user_id: z.string().min(1).optional(),
  recipient_type: z.string().optional(),
  recipient_participant_id: z.string().min(1).optional(),
  // A group member who hides their number (usernames): their BSUID instead of `recipient_participant_id`.
  recipient_participant_user_id: z.string().min(1).optional(),
  pricing: Pricing.optional(),
  errors: z.array(z.unknown()).optional(),
});
export type WhatsAppStatus = z.infer<typeof WhatsAppStatus>;

export const WhatsAppValue = z.looseObject({
  messaging_product: z.string().optional(),
  metadata: z.looseObject({
    phone_number_id: z.string().min(1).max(64),
  }),
  // Statuses are validated one by one (parseWebhook), so a 400 names every malformed status by its path.
  statuses: z.array(z.unknown()).optional(),
});

export const WhatsAppChange = z.looseObject({
  field: z.string(),
  value: z.unknown(),
});

/** An entry; its changes are read one by one (parseWebhook), so one of another shape holds back no other. */
export const WhatsAppEntry = z.looseObject({
  changes: z.array(z.unknown()),
});

/** Meta sends webhook bodies of at most 3 MB; taken as MiB, the larger reading. */
export const WEBHOOK_MAX_BYTES = 3 * 1024 * 1024;

/** The object of a WhatsApp Business Account's notifications; the same app may subscribe to others. */
export const WHATSAPP_OBJECT = "whatsapp_business_account";

/**
 * A Meta webhook notification's envelope. Entries are read one by one (parseWebhook): an entry of
 * another shape is kept in the dead-letter store, not a reason to refuse the others.
 */
export const WhatsAppWebhook = z.looseObject({
  object: z.string(),
  entry: z.array(z.unknown()),
});
export type WhatsAppWebhook = z.infer<typeof WhatsAppWebhook>;

export const WebhookVerifyQuery = z.object({
  "hub.mode": z.literal("subscribe"),
  "hub.verify_token": z.string(),
  "hub.challenge": z.string().max(256),
});
