import { z } from "zod";
import { CATEGORIES, Category, ClientId, Country, Recipient, STATUSES, Source, Status } from "./event.ts";
import { parseInstant } from "./time.ts";

/** The one error body every route returns. */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: "ErrorBody" });
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Longest error message: messages quote the caller's input (an id, a path), whose length is theirs. */
const ERROR_MESSAGE_MAX = 300;

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  const text = message.length > ERROR_MESSAGE_MAX ? `${message.slice(0, ERROR_MESSAGE_MAX - 1)}…` : message;
  return { error: details === undefined ? { code, message: text } : { code, message: text, details } };
}

/**
 * A body field that may be left out or sent as null, which many serialisers write for "none"
 * (Python's None, JavaScript's null for an unset form field): both mean `fallback`.
 */
export function absentOrNull<T extends z.ZodType, F extends z.output<T> | undefined = undefined>(schema: T, fallback?: F) {
  return schema.nullish().transform((v) => (v ?? fallback) as z.output<T> | F);
}

export const ROLES = ["admin", "finance", "viewer"] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** What a route asks to do. Detail reports hold personal data, so finance gets counts, not rows. */
export type Capability = "counters" | "report" | "billing" | "admin";

const ROLE_CAPABILITIES: Record<Role, ReadonlySet<Capability>> = {
  admin: new Set(["counters", "report", "billing", "admin"]),
  finance: new Set(["counters", "billing"]),
  viewer: new Set(["counters", "report"]),
};

/** Whether a role grants a capability at all (a viewer's is further limited to its clients: workers/auth/policy.ts). */
export function roleAllows(role: Role, capability: Capability): boolean {
  return ROLE_CAPABILITIES[role].has(capability);
}

/**
 * An IANA time zone, spelt as IANA spells it: the runtime reads `utc` or `america/sao_paulo` as the
 * zone, but a client's zone is shown and compared as stored, so a wrong case is refused with the
 * name to use. A fixed offset (`+03:00`) is no zone (it has no daylight-saving rules); an alias
 * (`Asia/Kolkata`, `Etc/UTC`) is kept as given.
 */
export const Timezone = z.string().check((ctx) => {
  const tz = ctx.value;
  let canonical: string;
  try {
    canonical = new Intl.DateTimeFormat("en", { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    ctx.issues.push({ code: "custom", input: tz, message: "an IANA time zone such as America/Sao_Paulo" });
    return;
  }
  if (/^[+-]/.test(canonical)) ctx.issues.push({ code: "custom", input: tz, message: "an IANA time zone such as America/Sao_Paulo, not an offset" });
  else if (canonical !== tz && canonical.toLowerCase() === tz.toLowerCase()) ctx.issues.push({ code: "custom", input: tz, message: `time zone names are case-sensitive: ${canonical}` });
});
/**
 * A whole number given in a query string (`limit=50`). Coerced from its text; `abc` or `1.5` is
 * refused as not a whole number, where zod alone would say "expected number, received NaN".
 */
const NOT_WHOLE = { error: "expected a whole number" };
export const QueryWholeNumber = z.coerce.number(NOT_WHOLE).int(NOT_WHOLE);
/** A currency's ISO 4217 code as stored and shown. */
export const Currency = z.string().regex(/^[A-Z]{3}$/, "ISO 4217 code");
/** A currency a client or rate card may be given: one the runtime knows (ISO 4217's current codes), not merely three letters. */
export const KnownCurrency = Currency.refine((c) => Intl.supportedValuesOf("currency").includes(c), "an ISO 4217 currency code, such as BRL or USD");
/** Meta's phone number ids are digits; other senders' are kept to a plain alphabet (they route webhooks and appear in logs). */
export const PhoneNumberId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, "letters, digits, '_', '.', ':', '-'");
/**
 * A name people read (a client's): trimmed, not empty, without control characters or the
 * bidirectional overrides that make text display as other text (it goes into billing files and the
 * dashboard).
 */
export const DisplayName = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .refine((s) => s.isWellFormed() && !/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(s), "must be plain text, without control characters");
export const IsoDate = z.iso.date();

/**
 * A Cron Trigger job's state from its latest run: `overdue` when no run started within its cron's
 * interval and a grace (the trigger stopped firing), `unfinished` when one started and was cut off.
 */
export const CronJobState = z.enum(["ok", "failed", "running", "unfinished", "overdue", "never_ran"]);
export type CronJobState = z.infer<typeof CronJobState>;
export const CronJobStatus = z.object({
  job: z.string(),
  cron: z.string(),
  every_ms: z.number().int(),
  state: CronJobState,
  last_started_at: z.number().int().nullable(),
  last_finished_at: z.number().int().nullable(),
  last_ok_at: z.number().int().nullable(),
  /** The message of the latest finished run's failure; null when it succeeded. */
  error: z.string().nullable(),
});
export type CronJobStatus = z.infer<typeof CronJobStatus>;
export const CronJobList = z.object({ jobs: z.array(CronJobStatus) });
export type CronJobList = z.infer<typeof CronJobList>;

/**
 * `GET /health`'s answer when D1 and R2 both answer (else 503 `unhealthy`, naming which did not), with
 * each Cron Trigger job's state by name in `jobs`: a stopped or failing job does not make the Worker unhealthy.
 */
export const HealthResponse = z.object({ ok: z.literal(true), d1: z.literal(true), r2: z.literal(true), jobs: z.record(z.string(), CronJobState) });
export type HealthResponse = z.infer<typeof HealthResponse>;

// ---------- ingest ----------
export const IngestReject = z.object({ index: z.number().int(), code: z.string(), message: z.string() });
export const WebhookResult = z.object({
  accepted: z.number().int(),
  duplicates: z.number().int(),
  ignored: z.number().int(),
});
export type WebhookResult = z.infer<typeof WebhookResult>;
export const BridgeResult = z.object({
  accepted: z.number().int(),
  duplicates: z.number().int(),
  rejected: z.array(IngestReject),
});
export type BridgeResult = z.infer<typeof BridgeResult>;

// ---------- counters ----------
/** An ISO-8601 date or date-time in a query (`parseInstant`: without a zone it is UTC), as epoch ms. */
const QueryInstant = z
  .string()
  .meta({ description: "ISO-8601: 2026-11-20T10:00:00Z, 2026-11-20T07:00-03:00, 2026-11-20 (midnight UTC); no zone means UTC" })
  .transform((s, ctx) => {
    const ms = parseInstant(s);
    if (ms === null) {
      ctx.addIssue({ code: "custom", message: "expected an ISO-8601 date or date-time, e.g. 2026-11-20T10:00:00Z" });
      return z.NEVER;
    }
    return ms;
  });

/** A time range from ISO-8601 instants (time zones only at the edges). */
export const TimeRangeQuery = z
  .object({ from: QueryInstant, to: QueryInstant })
  .refine((r) => r.from < r.to, { message: "`from` must be before `to`", path: ["to"] });

// ---------- reports ----------
export const ReportFormat = z.enum(["csv", "parquet"]);
export type ReportFormat = z.infer<typeof ReportFormat>;
/**
 * The form of a CSV report: `epoch_ms` (the default) writes every value as the canonical event holds
 * it, times as int64 epoch ms; `iso` is for spreadsheets: ISO-8601 UTC times, and formula-like text
 * defused with a leading `'`. Parquet carries typed values either way.
 */
export const ReportTimes = z.enum(["epoch_ms", "iso"]);
export type ReportTimes = z.infer<typeof ReportTimes>;
const STATUS_ALTERNATIVES = `(?:${STATUSES.join("|")})`;
/** Statuses joined by commas, each one that STATUSES names (the pattern lists them to whoever reads the schema). */
const StatusList = z.string().regex(new RegExp(`^${STATUS_ALTERNATIVES}(?:,${STATUS_ALTERNATIVES})*$`), `statuses among ${STATUSES.join(", ")}, comma-separated`);
/** `GET /v1/clients/:id/report`: a time range, a format, and optionally statuses (`status=sent,failed` or `status=sent&status=failed`). */
export const ReportQuery = TimeRangeQuery.safeExtend({
  format: ReportFormat.default("csv"),
  times: ReportTimes.default("epoch_ms"),
  status: z
    .union([StatusList, z.array(StatusList)])
    .transform((s) => [s].flat().flatMap((v) => v.split(",")))
    .pipe(z.array(Status))
    .optional(),
});

// ---------- dead letters ----------
/** `GET /v1/admin/dead-letters` and `POST /v1/admin/dead-letters/replay`: one UTC day's letters, a page at a time. */
export const DeadLetterQuery = z.object({
  date: IsoDate,
  /** The last key of the previous page (its `next`). */
  start_after: z.string().startsWith("dlq/date=").optional(),
  limit: QueryWholeNumber.min(1).max(200).default(50),
});
/** Why some input was not counted. */
export const Rejection = z.object({
  /** Position of the record in the request (bridge) or the JSON path (webhook). */
  at: z.union([z.number(), z.string()]),
  code: z.string(),
  message: z.string(),
});
export type Rejection = z.infer<typeof Rejection>;
/** A letter as `dlq/` holds it. */
export const StoredDeadLetter = z.object({
  received_at: z.number().int(),
  source: Source,
  rejections: z.array(Rejection),
  content_type: z.string().nullable(),
  /** The client the bridged batch's ingest key was limited to (null: any client). */
  client_scope: z.string().nullable().optional(),
  /**
   * How `input` is read: the request body whole, or a bridged batch's rejected records. Absent in
   * letters kept before 2026-12-06, where a bridged letter was a body only while it held `malformed`.
   */
  input_form: z.enum(["body", "records"]).optional(),
  /** The input exactly as received (or a bridged batch's rejected records), so it can be replayed. */
  input: z.string(),
});
export type StoredDeadLetter = z.infer<typeof StoredDeadLetter>;
export const DeadLetterList = z.object({
  date: IsoDate,
  letters: z.array(
    z.object({ key: z.string(), received_at: z.number().int(), source: Source, bytes: z.number().int(), rejections: z.array(Rejection) }),
  ),
  next: z.string().nullable(),
});
export type DeadLetterList = z.infer<typeof DeadLetterList>;
export const DeadLetterReplay = z.object({
  date: IsoDate,
  letters: z.number().int(),
  /** Letters whose every rejection is now resolved: their events are stored and the letters deleted. */
  resolved: z.number().int(),
  accepted: z.number().int(),
  duplicates: z.number().int(),
  /** Letters kept, with what is still refused in each. */
  remaining: z.array(z.object({ key: z.string(), rejections: z.array(Rejection) })),
  next: z.string().nullable(),
});
export type DeadLetterReplay = z.infer<typeof DeadLetterReplay>;

// ---------- audit log ----------
/** `GET /v1/admin/audit`: who did what, newest first, a page at a time. */
export const AuditQuery = z
  .object({
    from: QueryInstant.optional(),
    to: QueryInstant.optional(),
    /** One action (`user.create`), or every action of a kind when it ends in a dot (`auth.`). */
    action: z.string().min(1).max(64).optional(),
    actor: z.string().min(1).max(254).optional(),
    target: z.string().min(1).max(254).optional(),
    /** The previous page's `next`: entries older than it. */
    before: QueryWholeNumber.positive().optional(),
    limit: QueryWholeNumber.min(1).max(500).default(100),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from < q.to, { message: "`from` must be before `to`", path: ["to"] });
export const AuditEntry = z.object({
  id: z.number().int(),
  at: z.number().int(),
  /** The signed-in user's email, or `address:<ip>` for what an unauthenticated caller caused. */
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
});
export const AuditList = z.object({ entries: z.array(AuditEntry), next: z.number().int().nullable() });
export type AuditList = z.infer<typeof AuditList>;

// ---------- lake ----------
export const FlushQuery = z.object({ client_id: ClientId.optional() });
export const FlushResponse = z.object({ files: z.array(z.string()) });
export type FlushResponse = z.infer<typeof FlushResponse>;
export const LakeCompactQuery = z.object({ client_id: ClientId, date: IsoDate });
/** The files written (one per shard with more than one file), the small files they replaced, and their rows. */
export const LakeCompactResponse = z.object({ files: z.array(z.string()), replaced: z.number().int(), rows: z.number().int() });
export type LakeCompactResponse = z.infer<typeof LakeCompactResponse>;

// ---------- recipient erasure ----------
/** One recipient's data to erase from a client's lake: E.164 digits (a leading + is dropped) or a BSUID. */
export const ErasureRequest = z.object({ recipient: Recipient });
export const ErasureId = z.uuid();
export const ErasurePath = z.object({ id: ClientId, erasure_id: ErasureId });
/**
 * An erasure as an admin follows it. The recipient is not in it: the object keeps it only until the
 * erasure is done, and an answer would put it in whatever logs the caller keeps.
 */
export const Erasure = z.object({
  id: ErasureId,
  client_id: ClientId,
  status: z.enum(["pending", "done"]),
  asked_at: z.number().int(),
  done_at: z.number().int().nullable(),
  /** The client's lake days left to read; null until the outboxes are flushed and the days listed. */
  days_left: z.number().int().nullable(),
  files_rewritten: z.number().int(),
  rows_removed: z.number().int(),
  /** Failed tries in a row (R2 or an object); the job retries with backoff. */
  failures: z.number().int(),
});
export type Erasure = z.infer<typeof Erasure>;

export const StatusCounts = z.object(
  Object.fromEntries(STATUSES.map((s) => [s, z.number().int()])) as Record<Status, z.ZodNumber>,
);
export type StatusCounts = z.infer<typeof StatusCounts>;
export const MinuteCounts = StatusCounts.extend({ minute: z.number().int() });
export type MinuteCounts = z.infer<typeof MinuteCounts>;
export const CountersResponse = z.object({ client_id: ClientId, minutes: z.array(MinuteCounts) });
export type CountersResponse = z.infer<typeof CountersResponse>;
/** A pricing category's counts by status; `category` is null for events Meta sent without one. */
export const CategoryCounts = StatusCounts.extend({ category: Category.nullable() });
export type CategoryCounts = z.infer<typeof CategoryCounts>;
/** Counts by category over the minutes that overlap [from, to): `from` is the start of its minute. */
export const CategoriesResponse = z.object({
  client_id: ClientId,
  from: z.number().int(),
  to: z.number().int(),
  categories: z.array(CategoryCounts),
});
export type CategoriesResponse = z.infer<typeof CategoriesResponse>;

export const ClientSummary = z
  .object({
    /** The name every other shape (counters, live messages, billing) uses for the client's id. */
    client_id: ClientId,
    id: ClientId,
    name: z.string(),
    timezone: z.string(),
    currency: z.string(),
    active: z.boolean(),
    today: StatusCounts,
  })
  .meta({ id: "ClientSummary" });
export type ClientSummary = z.infer<typeof ClientSummary>;
/**
 * `GET /v1/clients`: every client the caller may see, or a page of them in id order. Each listed
 * client costs a call to its object for today's totals, so an account of thousands lists in pages.
 */
export const ClientsQuery = z.object({
  /** The previous page's `next`: clients whose id sorts after it. */
  start_after: ClientId.optional(),
  /** Clients in the page; without it, all of them. */
  limit: QueryWholeNumber.min(1).max(1000).optional(),
});
export const ClientsResponse = z.object({
  clients: z.array(ClientSummary),
  /** The `start_after` of the next page; null when this one ends the list. */
  next: ClientId.nullable(),
});
export type ClientsResponse = z.infer<typeof ClientsResponse>;

// ---------- auth ----------
export const LoginRequest = z.object({
  email: z.email().max(254),
  password: z.string().min(1).max(256),
  /** The `device_token` of an earlier sign-in to this account: its failures then count apart from strangers'. */
  device_token: absentOrNull(z.string().max(200)),
});
export type LoginRequest = z.infer<typeof LoginRequest>;
/** Users are numbered from 1 (D1's rowid). */
export const UserId = z.number().int().min(1);
export const PublicUser = z
  .object({
    id: UserId,
    email: z.string(),
    role: Role,
    client_ids: z.array(z.string()),
  })
  .meta({ id: "PublicUser" });
export type PublicUser = z.infer<typeof PublicUser>;
export const LoginResponse = z.object({
  token: z.string(),
  user: PublicUser,
  /** Kept by the caller and sent with its next sign-ins to this account (workers/auth/trusted-device.ts). */
  device_token: z.string(),
});
export type LoginResponse = z.infer<typeof LoginResponse>;

// ---------- admin ----------
/** Most ClientCounters one client's events can be split over (durable-objects/client-shards.ts). */
export const MAX_SHARDS = 64;
/** A list that names each item once, as its schema says (`uniqueItems`) to whoever reads it as JSON Schema. */
function listedOnce(item: z.ZodString, max: number, what: string) {
  return z
    .array(item)
    .max(max)
    .refine((ids) => new Set(ids).size === ids.length, `a ${what} is listed twice`)
    .meta({ uniqueItems: true });
}
/** A PATCH body that changes something: `{}` is refused, and its schema says so (`minProperties`). */
function somethingToUpdate<T extends z.ZodObject>(fields: T) {
  return fields.refine((v) => Object.values(v).some((x) => x !== undefined), "nothing to update").meta({ minProperties: 1 });
}
const ClientFields = z.object({
  name: DisplayName,
  timezone: Timezone,
  currency: KnownCurrency,
  phone_number_ids: listedOnce(PhoneNumberId, 1000, "phone number id"),
  /**
   * ClientCounters the client's events are split over by message (a hot client's). Once it has
   * events the count can grow, not shrink (docs/architecture.md, "Hot clients: shards").
   */
  shards: z.number().int().min(1).max(MAX_SHARDS),
});
// Admin bodies are strict: a misspelt optional field (`timezon`) would otherwise be dropped and its default kept.
export const CreateClientRequest = z.strictObject({
  id: ClientId,
  name: ClientFields.shape.name,
  timezone: absentOrNull(ClientFields.shape.timezone, "UTC"),
  currency: absentOrNull(ClientFields.shape.currency, "BRL"),
  phone_number_ids: absentOrNull(ClientFields.shape.phone_number_ids, []),
  shards: absentOrNull(ClientFields.shape.shards, 1),
});
// Built from the fields without their defaults: a partial schema keeps a field's default, so a PATCH
// naming only `name` would reset the time zone, the currency and the phone numbers.
export const UpdateClientRequest = somethingToUpdate(ClientFields.partial().extend({ active: z.boolean().optional() }).strict());
export const AdminClient = z
  .object({
    id: ClientId,
    name: z.string(),
    timezone: z.string(),
    currency: z.string(),
    shards: z.number().int(),
    active: z.boolean(),
    phone_number_ids: z.array(z.string()),
  })
  .meta({ id: "AdminClient" });
export type AdminClient = z.infer<typeof AdminClient>;

/** One source's ingest calls at an object: the calls, the statuses they carried, the new ones among them. */
const SourceIngest = z.object({ calls: z.number().int(), events: z.number().int(), accepted: z.number().int() });

/**
 * An object's ingest traffic since it last started (durable-objects/ingest-tally.ts): what the cost
 * model's per-call outbox row depends on (docs/capacity.md, "Where the money goes"), as production
 * traffic has it.
 */
export const IngestMix = z.object({
  /** When the object started counting, epoch ms: its start (a deploy or an eviction starts it again). */
  since: z.number().int(),
  /** Transactions the calls shared: calls that reached the object together commit as one. */
  commits: z.number().int(),
  /** SQLite rows written, the billing unit: by the commits and by the flushes between them. */
  rows_written: z.number().int(),
  whatsapp: SourceIngest,
  kafka: SourceIngest,
});
export type IngestMix = z.infer<typeof IngestMix>;

/** One of a client's ClientCounter objects, as an operator sizes it (`GET /v1/admin/clients/:id/objects`). */
export const ClientObject = z.object({
  shard: z.number().int(),
  /** The object's SQLite database, against the per-object limit. */
  storage_bytes: z.number().int(),
  /** Events of the last 24 hours and of its busiest minute, by `occurred_at` (the per-minute counters). */
  events_last_24h: z.number().int(),
  busiest_minute_events: z.number().int(),
  /** Detail rows the object holds for the lake, and lake flushes that failed in a row (retried with backoff). */
  lake_backlog_events: z.number().int(),
  lake_flush_failures: z.number().int(),
  /** When the object's next alarm (lake flush) is due, epoch ms; null when nothing waits. */
  next_alarm_at: z.number().int().nullable(),
  /** Its receive-month event tables (dedup and billed marks), oldest first. */
  event_tables: z.array(z.string()),
  ingest: IngestMix,
});
export type ClientObject = z.infer<typeof ClientObject>;

export const ClientObjects = z.object({
  client_id: ClientId,
  shards: z.number().int(),
  /** Sums over the objects. */
  storage_bytes: z.number().int(),
  events_last_24h: z.number().int(),
  /** What one object may hold. */
  storage_limit_bytes: z.number().int(),
  /**
   * The shard count the last day's volume needs for storage (docs/capacity.md, "Per-object storage");
   * a shard count can grow, not shrink, so one above it is kept.
   */
  shards_for_storage: z.number().int(),
  objects: z.array(ClientObject),
});
export type ClientObjects = z.infer<typeof ClientObjects>;

export const RateCardRequest = z.strictObject({
  client_id: ClientId.nullable(),
  category: z.enum(CATEGORIES),
  country: z.union([z.literal("*"), Country]),
  unit_price_micros: z.number().int().min(0).max(1_000_000_000_000),
  currency: KnownCurrency,
  valid_from: absentOrNull(IsoDate),
});
export const RateCard = RateCardRequest.omit({ valid_from: true }).extend({ id: z.number().int(), valid_from: IsoDate }).meta({ id: "RateCard" });
export type RateCard = z.infer<typeof RateCard>;

/** NIST SP 800-63B's floor for passwords people choose; the sign-in lockout limits guessing. */
export const MIN_PASSWORD_LENGTH = 8;
/** `details.reason` of a `weak_password` refusal. */
export const WeakPasswordReason = z.enum(["common", "repeated", "email", "development"]);
export type WeakPasswordReason = z.infer<typeof WeakPasswordReason>;

/** The clients a viewer may see. */
const ViewerClientIds = listedOnce(ClientId, 10_000, "client id");

export const CreateUserRequest = z.strictObject({
  email: z.email().max(254),
  password: z.string().min(MIN_PASSWORD_LENGTH).max(256),
  role: Role,
  client_ids: absentOrNull(ViewerClientIds, []),
});

/** A user's own new password, confirmed by the current one; it ends the user's other sessions. */
export const ChangePasswordRequest = z
  .object({ current_password: LoginRequest.shape.password, new_password: CreateUserRequest.shape.password })
  .refine((b) => b.new_password !== b.current_password, { path: ["new_password"], message: "must differ from the current password" });

/** Any of a user's role, clients, state and password; a new password or deactivation ends their sessions. */
export const UpdateUserRequest = somethingToUpdate(
  z.strictObject({
    password: CreateUserRequest.shape.password.optional(),
    role: Role.optional(),
    // Not CreateUserRequest's (that defaults to none): a PATCH without client_ids keeps them.
    client_ids: ViewerClientIds.optional(),
    active: z.boolean().optional(),
  }),
);
export const AdminUser = PublicUser.extend({ active: z.boolean() }).meta({ id: "AdminUser" });
export type AdminUser = z.infer<typeof AdminUser>;

export const CreateApiKeyRequest = z.strictObject({
  scope: z.literal("ingest"),
  client_id: absentOrNull(ClientId),
  label: absentOrNull(z.string().max(200)),
});
/** An ingest key as listed (never the key itself); times in epoch ms. */
export const ApiKeyInfo = z.object({
  id: z.string(),
  scope: z.literal("ingest"),
  client_id: ClientId.nullable(),
  label: z.string().nullable(),
  created_at: z.number().int(),
  revoked_at: z.number().int().nullable(),
});
export type ApiKeyInfo = z.infer<typeof ApiKeyInfo>;
export const RevokedApiKey = ApiKeyInfo.pick({ id: true }).extend({ revoked_at: z.number().int() });
export type RevokedApiKey = z.infer<typeof RevokedApiKey>;

export const CreatedApiKey = z.object({
  id: z.string(),
  key: z.string(),
  scope: z.literal("ingest"),
  client_id: ClientId.nullable(),
});
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

/** Response headers with the storage work one ingest request caused, outside production (bench/ reads them). */
export const INGEST_STATS_HEADERS = {
  calls: "x-zapmeter-do-calls",
  rowsWritten: "x-zapmeter-rows-written",
  rowsRead: "x-zapmeter-rows-read",
  backgroundRowsWritten: "x-zapmeter-background-rows-written",
} as const;

/** `POST /v1/ingest/events` takes at most this many records per request: a larger batch gets a 413 and is split. */
export const INGEST_MAX_RECORDS = 10_000;
/** ... and at most this many bytes (Kafka Connect's default request size is far below). */
export const INGEST_MAX_BYTES = 5 * 1024 * 1024;
