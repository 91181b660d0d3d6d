import { z } from "zod";
import {
  AdminClient,
  AdminUser,
  ApiKeyInfo,
  AuditList,
  AuditQuery,
  BridgeResult,
  ClientObjects,
  ClientSummary,
  ClientsQuery,
  ClientsResponse,
  CronJobList,
  CategoriesResponse,
  CountersResponse,
  CreateApiKeyRequest,
  CreateClientRequest,
  CreatedApiKey,
  CreateUserRequest,
  DeadLetterList,
  DeadLetterQuery,
  DeadLetterReplay,
  Erasure,
  ErasurePath,
  ErasureRequest,
  ErrorBody,
  INGEST_MAX_BYTES,
  INGEST_MAX_RECORDS,
  FlushQuery,
  FlushResponse,
  HealthResponse,
  LakeCompactQuery,
  LakeCompactResponse,
  ChangePasswordRequest,
  LoginRequest,
  LoginResponse,
  PublicUser,
  RateCard,
  RateCardRequest,
  ReportQuery,
  RevokedApiKey,
  TimeRangeQuery,
  UpdateClientRequest,
  UpdateUserRequest,
  UserId,
  WebhookResult,
} from "../schema/api.ts";
import {
  BillingDateParam,
  BillingQuery,
  BillingResponse,
  BillingSummary,
  BillingSummaryQuery,
  BillingRunResponse,
  DownloadQuery,
  DownloadResponse,
  ReconcileQuery,
  ReconcileResponse,
  MAX_SUMMARY_DAYS,
  SignedFileQuery,
} from "../schema/billing.ts";
import { BridgedEvent, ClientId } from "../schema/event.ts";
import { ClientLiveMessage, LiveQuery, LiveTicket, LiveTicketRequest, OverviewLiveMessage, TICKET_TTL_MS } from "../schema/live.ts";
import { WEBHOOK_MAX_BYTES, WebhookVerifyQuery, WhatsAppEntry, WhatsAppWebhook } from "../schema/whatsapp.ts";
import { MAX_SOCKETS_PER_SESSION } from "../durable-objects/live-sockets.ts";
import { DAY_MS } from "../schema/time.ts";
import { SESSION_COOKIE } from "./auth/session.ts";
import { MAX_COUNTERS_RANGE_MS } from "./routes/clients.ts";
import { DEFAULT_MAX_BODY } from "./security.ts";

/** `live`: a session, or the one-use ticket of POST /v1/live/ticket, which opens the socket alone. */
type Security = "session" | "admin" | "live" | "ingestKey" | "metaSignature" | "none";

/** A response header as the document states it (a JSON Schema of its value). */
interface Header {
  description: string;
  schema: Record<string, unknown>;
}

interface Reply {
  description: string;
  schema?: z.ZodType;
  /**
   * Bodies other than JSON, by media type: text, or bytes, which OpenAPI 3.1 describes by a media
   * type without a schema (a string schema would have generators decode them as text).
   */
  media?: Record<string, "text" | "binary">;
  headers?: Record<string, Header>;
}

/** One documented operation; the schemas are the very objects the routes validate with. */
export interface Operation {
  method: "get" | "post" | "put" | "patch" | "delete";
  path: string;
  /** Named here, not derived from the path or the order: SDKs name their methods by it, so it must not change. */
  operationId: string;
  summary: string;
  tag: string;
  security: Security;
  /** The path's parameters, as the route checks them or as every id it finds has them (others are 404); a missing one is any string. */
  params?: z.ZodObject;
  query?: z.ZodObject | z.ZodType;
  body?: z.ZodType;
  /** Other request media types than application/json, each with its own description of the body. */
  bodyTypes?: Record<string, string>;
  /** The body may be left out. */
  bodyOptional?: true;
  /** The route reads its query itself and refuses one it cannot read with a code of its own responses, not the validator's 400. */
  ownQueryCheck?: true;
  responses: Record<number, Reply>;
}

/** Kafka Connect's HTTP sink record: the event as `value`, an object or its JSON text. */
const ConnectRecord = z.looseObject({ value: z.union([BridgedEvent, z.string()]), topic: z.string().optional(), partition: z.number().optional(), offset: z.number().optional() });
const BridgeRecord = z.union([BridgedEvent, ConnectRecord]);
const Events = z.union([z.array(BridgeRecord), z.object({ events: z.array(BridgeRecord) }), BridgeRecord]);
const Ok = z.object({ ok: z.literal(true) });
const ClientPath = z.object({ id: ClientId });
const UserPath = z.object({ id: UserId });

const RETRY_AFTER = { "Retry-After": { description: "seconds to wait before trying again", schema: { type: "integer", minimum: 1 } } };
const SESSION_COOKIE_SET = { "Set-Cookie": { description: `the session cookie (${SESSION_COOKIE}; HttpOnly, SameSite=Strict)`, schema: { type: "string" } } };
const ATTACHMENT = { "Content-Disposition": { description: "attachment; filename=\"…\": the file's name", schema: { type: "string" } } };
/** The CSV and Parquet files the report and the signed links serve. */
const FILE_MEDIA = { "text/csv": "text", "application/vnd.apache.parquet": "binary" } as const;
const rangeRefused = { description: `invalid range, or over ${MAX_COUNTERS_RANGE_MS / DAY_MS} days (range_too_large, details.max_days)`, schema: ErrorBody };
const socketsRefused = { description: `the session holds ${MAX_SOCKETS_PER_SESSION} sockets on this stream already (too_many_sockets)`, schema: ErrorBody };

/** Every public route. A test checks this list against the app's routes both ways. */
export const OPERATIONS: Operation[] = [
  {
    method: "get", path: "/health", operationId: "getHealth", summary: "D1 (migrated) and R2 answer; each Cron Trigger job's state", tag: "ops", security: "none",
    responses: { 200: { description: "healthy", schema: HealthResponse }, 503: { description: "a dependency is down (unhealthy, details: {d1, r2}), or D1 lacks this code's migrations (migrations_not_applied)", schema: ErrorBody } },
  },
  {
    method: "get", path: "/v1/openapi.json", operationId: "getOpenApiDocument", summary: "This document", tag: "ops", security: "none",
    responses: { 200: { description: "OpenAPI 3.1 document", schema: z.looseObject({ openapi: z.literal("3.1.0") }) } },
  },
  {
    method: "get", path: "/v1/webhooks/whatsapp", operationId: "verifyWhatsAppWebhook", summary: "WhatsApp webhook verification handshake", tag: "ingest",
    security: "none", query: WebhookVerifyQuery, ownQueryCheck: true,
    responses: {
      200: { description: "the hub.challenge, as text", media: { "text/plain": "text" } },
      403: { description: "hub.mode is not subscribe, the token does not match, or hub.challenge is missing or over 256 characters", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/webhooks/whatsapp", operationId: "receiveWhatsAppNotifications", summary: "WhatsApp Cloud API status notifications (signed)", tag: "ingest",
    security: "metaSignature", body: WhatsAppWebhook.safeExtend({ entry: z.array(WhatsAppEntry) }),
    responses: {
      200: { description: "every readable status durable; unknown numbers, unknown kinds, malformed entries or statuses and the statuses of a client whose storage is full (client_storage_full) are `ignored` and kept in dlq/; other objects' notifications are `ignored`", schema: WebhookResult },
      400: { description: "malformed payload: not JSON, or not an `{object, entry: []}` notification (kept in dlq/)", schema: ErrorBody },
      401: { description: "bad or missing X-Hub-Signature-256", schema: ErrorBody },
      413: { description: `body over ${WEBHOOK_MAX_BYTES} bytes`, schema: ErrorBody },
      503: { description: "storage failed; retry", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/ingest/events", operationId: "ingestEvents", summary: "Kafka-bridged event batches", tag: "ingest", security: "ingestKey",
    body: Events, bodyTypes: { "application/x-ndjson": "one event (or Connect record) per line; a line that is not JSON is rejected on its own" },
    responses: {
      200: { description: "stored; invalid records listed (and kept in dlq/), a scoped key's record of another client among them (client_not_allowed), and a client's whose storage is full (client_storage_full)", schema: BridgeResult },
      400: { description: "body is not JSON, or an envelope other than an array, {events: [...]} or one (Connect-wrapped) event, such as {records: [...]}, or records that are all batches themselves (malformed_batch)", schema: ErrorBody },
      401: { description: "missing or unknown API key", schema: ErrorBody },
      403: { description: "a key scoped to one client, and the records name other clients and none that client, valid or not (client_not_allowed)", schema: ErrorBody },
      413: { description: `over ${INGEST_MAX_BYTES} bytes or ${INGEST_MAX_RECORDS} records`, schema: ErrorBody },
      415: { description: "neither JSON nor NDJSON (unsupported_media_type), or compressed (unsupported_content_encoding)", schema: ErrorBody },
      503: { description: "storage failed; retry", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/auth/login", operationId: "login", summary: "Sign in; sets the session cookie", tag: "auth", security: "none",
    body: LoginRequest,
    responses: {
      200: { description: "signed in", schema: LoginResponse, headers: SESSION_COOKIE_SET },
      401: { description: "wrong credentials", schema: ErrorBody },
      403: { description: "from a page of another origin (forbidden_origin), or the dev password in production", schema: ErrorBody },
      429: { description: "too many attempts on the account or from the address (too_many_attempts, details.retry_after_s)", schema: ErrorBody, headers: RETRY_AFTER },
    },
  },
  {
    method: "post", path: "/v1/auth/logout", operationId: "logout", summary: "Revoke the session, if any, and clear the cookie (200 without one too)", tag: "auth", security: "none",
    responses: { 200: { description: "signed out; the cookie cleared", schema: Ok, headers: SESSION_COOKIE_SET }, 403: { description: "the session cookie from a page of another origin (forbidden_origin)", schema: ErrorBody } },
  },
  {
    method: "post", path: "/v1/auth/password", operationId: "changePassword", summary: "Change one's own password; ends the user's other sessions and returns a fresh one", tag: "auth", security: "session",
    body: ChangePasswordRequest,
    responses: {
      200: { description: "changed; the new session's token (and cookie)", schema: LoginResponse, headers: SESSION_COOKIE_SET },
      400: { description: "new password too short, the same as the current one, or weak (weak_password: a common one, the email, one character repeated)", schema: ErrorBody },
      401: { description: "not signed in", schema: ErrorBody },
      403: { description: "the current password is wrong, or a page of another origin (forbidden_origin)", schema: ErrorBody },
      429: { description: "the account's sign-in lockout (too_many_attempts, details.retry_after_s)", schema: ErrorBody, headers: RETRY_AFTER },
    },
  },
  {
    method: "get", path: "/v1/me", operationId: "getMe", summary: "The signed-in user", tag: "auth", security: "session",
    responses: { 200: { description: "user", schema: z.object({ user: PublicUser }) }, 401: { description: "not signed in", schema: ErrorBody } },
  },
  {
    method: "get", path: "/v1/clients", operationId: "listClients", summary: "Clients the caller may see, with today's totals, all or a page at a time in id order", tag: "read",
    security: "session", query: ClientsQuery,
    responses: { 200: { description: "clients", schema: ClientsResponse }, 400: { description: "bad paging", schema: ErrorBody } },
  },
  {
    method: "get", path: "/v1/clients/{id}", operationId: "getClient", summary: "One client the caller may see, with today's totals", tag: "read", params: ClientPath, security: "session",
    responses: {
      200: { description: "the client", schema: ClientSummary },
      403: { description: "not your client", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/clients/{id}/counters", operationId: "getClientCounters", summary: "Per-minute counts by status", tag: "read", params: ClientPath, security: "session",
    query: TimeRangeQuery,
    responses: {
      200: { description: "minutes with events", schema: CountersResponse },
      400: rangeRefused,
      403: { description: "not your client", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/clients/{id}/categories", operationId: "getClientCategories", summary: "Counts by pricing category and status over a range", tag: "read", params: ClientPath, security: "session",
    query: TimeRangeQuery,
    responses: {
      200: { description: "a row per category with events (category null: none sent); CATEGORIES order, none last", schema: CategoriesResponse },
      400: rangeRefused,
      403: { description: "not your client", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/clients/{id}/report", operationId: "getClientReport", summary: "Detailed report (one row per event accepted before the request), streamed from the lake after the client's waiting rows are written to it", tag: "read",
    params: ClientPath, security: "session", query: ReportQuery,
    responses: {
      200: {
        description: "text/csv (header, RFC 4180, UTF-8; times epoch ms; times=iso is the spreadsheet form: ISO-8601 times, formula-like text prefixed with ') or application/vnd.apache.parquet, as an attachment",
        media: FILE_MEDIA,
        headers: ATTACHMENT,
      },
      400: { description: "invalid range, format or status", schema: ErrorBody },
      403: { description: "not your client, or no report access (finance)", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
      503: { description: "the client's waiting rows could not be written to the lake (flush_failed), or the lake's partition kept changing while it was listed (lake_busy); retry", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/admin/flush", operationId: "flushToLake", summary: "Write pending detail rows to the lake now", tag: "admin", security: "admin",
    query: FlushQuery,
    responses: {
      200: { description: "keys of the files written", schema: FlushResponse },
      404: { description: "no such client", schema: ErrorBody },
      503: { description: "some outboxes could not be written; retry", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/admin/lake/compact", operationId: "compactLakePartition", tag: "admin", security: "admin", query: LakeCompactQuery,
    summary: "Compact a client's lake partition of a closed UTC day now, through its shard 0 (a day the nightly retries gave up on, once its bad file is removed)",
    responses: {
      200: { description: "the files written (one per shard that had more than one), the small files they replaced and their rows", schema: LakeCompactResponse },
      400: { description: "invalid date, or not a closed UTC day (day_not_closed)", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
      409: { description: "a file of the partition is not Parquet (not_parquet, details.key): remove it, then compact again", schema: ErrorBody },
      503: { description: "R2 or the client's object failed (compaction_failed); the files stay readable; retry", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/clients/{id}/live", operationId: "streamClientLive", tag: "live", params: ClientPath, security: "live", query: LiveQuery,
    summary: "WebSocket: one client's snapshot (last 60 minutes + today), then coalesced updates (session, bearer or ?ticket=); closed with 4401 once the session ends",
    responses: {
      101: { description: "switching protocols; server messages follow this schema", schema: ClientLiveMessage },
      401: { description: "no valid session or ticket", schema: ErrorBody },
      403: { description: "not your client, or the session cookie from another origin", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
      426: { description: "not a WebSocket upgrade", schema: ErrorBody },
      429: socketsRefused,
    },
  },
  {
    method: "get", path: "/v1/live", operationId: "streamOverviewLive", tag: "live", security: "live", query: LiveQuery,
    summary: "WebSocket: overview of every client the caller may see (session, bearer or ?ticket=); closed with 4401 once the session ends",
    responses: {
      101: { description: "switching protocols; server messages follow this schema", schema: OverviewLiveMessage },
      401: { description: "no valid session or ticket", schema: ErrorBody },
      403: { description: "no counters access, a ticket of another stream, or the session cookie from another origin", schema: ErrorBody },
      426: { description: "not a WebSocket upgrade", schema: ErrorBody },
      429: socketsRefused,
    },
  },
  {
    method: "post", path: "/v1/live/ticket", operationId: "createLiveTicket", summary: `One-use WebSocket ticket (${TICKET_TTL_MS / 1000} s) for a cross-origin dashboard`, tag: "live",
    security: "session", body: LiveTicketRequest, bodyOptional: true,
    responses: {
      200: { description: "the ticket", schema: LiveTicket },
      403: { description: "not your client", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/clients", operationId: "adminListClients", summary: "List clients", tag: "admin", security: "admin",
    responses: { 200: { description: "clients", schema: z.object({ clients: z.array(AdminClient) }) } },
  },
  {
    method: "post", path: "/v1/admin/clients", operationId: "createClient", summary: "Create a client", tag: "admin", security: "admin", body: CreateClientRequest,
    responses: { 201: { description: "created", schema: AdminClient }, 409: { description: "id taken (client_exists), a phone number another client has (phone_number_taken), or either claimed by another request at the same time (concurrent_change)", schema: ErrorBody } },
  },
  {
    method: "patch", path: "/v1/admin/clients/{id}", operationId: "updateClient", summary: "Update a client", tag: "admin", params: ClientPath, security: "admin",
    body: UpdateClientRequest,
    responses: {
      200: { description: "updated", schema: AdminClient },
      404: { description: "no such client", schema: ErrorBody },
      409: { description: "a phone number another client has (phone_number_taken), a shard change while the last one's transition lasts (reshard_in_progress), fewer shards than before (shards_fixed), or another request's change at the same time (concurrent_change)", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/clients/{id}/objects", operationId: "getClientObjects", summary: "A client's Durable Objects: storage, last day's volume, lake backlog, shards needed", tag: "admin", params: ClientPath, security: "admin",
    responses: { 200: { description: "one entry per shard", schema: ClientObjects }, 404: { description: "no such client", schema: ErrorBody } },
  },
  {
    method: "post", path: "/v1/admin/clients/{id}/erasures", operationId: "eraseRecipient", tag: "admin", params: ClientPath, security: "admin", body: ErasureRequest,
    summary: "Erase one recipient's rows from a client's lake (every day, after its objects' waiting rows are written to it), in the client's object's alarm; the same recipient's pending erasure when one is going on",
    responses: {
      202: { description: "asked: the erasure's state (its id for GET; the recipient is not echoed)", schema: Erasure },
      400: { description: "not an E.164 number nor a BSUID (validation_failed)", schema: ErrorBody },
      404: { description: "no such client", schema: ErrorBody },
      503: { description: "the client's object could not be asked (erasure_not_asked); retry", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/clients/{id}/erasures/{erasure_id}", operationId: "getErasure", tag: "admin", params: ErasurePath, security: "admin",
    summary: "One recipient erasure's state: pending (days left, failures) or done",
    responses: {
      200: { description: "the erasure", schema: Erasure },
      404: { description: "no such client (client_not_found), or no such erasure of it (erasure_not_found; the 100 latest done are kept)", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/rate-cards", operationId: "listRateCards", summary: "List rate cards", tag: "admin", security: "admin",
    responses: { 200: { description: "rate cards", schema: z.object({ rate_cards: z.array(RateCard) }) } },
  },
  {
    method: "put", path: "/v1/admin/rate-cards", operationId: "setRateCard", summary: "Set a price", tag: "admin", security: "admin", body: RateCardRequest,
    responses: { 200: { description: "the rate card", schema: RateCard }, 404: { description: "client_id names no client", schema: ErrorBody } },
  },
  {
    method: "get", path: "/v1/admin/users", operationId: "listUsers", summary: "List users", tag: "admin", security: "admin",
    responses: { 200: { description: "users", schema: z.object({ users: z.array(AdminUser) }) } },
  },
  {
    method: "post", path: "/v1/admin/users", operationId: "createUser", summary: "Create a user", tag: "admin", security: "admin", body: CreateUserRequest,
    responses: {
      201: { description: "created", schema: PublicUser },
      400: { description: "invalid, unknown client_ids, or a weak password (weak_password: a common one, the email, one character repeated)", schema: ErrorBody },
      409: { description: "email taken (user_exists), or claimed by another request at the same time (concurrent_change)", schema: ErrorBody },
    },
  },
  {
    method: "patch", path: "/v1/admin/users/{id}", operationId: "updateUser", summary: "Change a user's role, clients, state or password (a new password or deactivation ends their sessions)", tag: "admin", params: UserPath, security: "admin",
    body: UpdateUserRequest,
    responses: {
      200: { description: "updated", schema: AdminUser },
      400: { description: "unknown client_ids, or a weak password (weak_password)", schema: ErrorBody },
      404: { description: "no such user", schema: ErrorBody },
      409: { description: "an admin demoting or deactivating themselves (own_access), or a change that would leave no active admin (last_admin)", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/api-keys", operationId: "listApiKeys", summary: "List ingest keys (without the keys)", tag: "admin", security: "admin",
    responses: { 200: { description: "keys", schema: z.object({ api_keys: z.array(ApiKeyInfo) }) } },
  },
  {
    method: "post", path: "/v1/admin/api-keys", operationId: "createApiKey", summary: "Create an ingest key (shown once)", tag: "admin", security: "admin",
    body: CreateApiKeyRequest,
    responses: { 201: { description: "created", schema: CreatedApiKey }, 404: { description: "client_id names no client", schema: ErrorBody } },
  },
  {
    method: "delete", path: "/v1/admin/api-keys/{id}", operationId: "revokeApiKey", summary: "Revoke an ingest key", tag: "admin", security: "admin",
    responses: {
      200: { description: "revoked (again: an already revoked key answers with when it was)", schema: RevokedApiKey },
      404: { description: "no such key", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/dead-letters", operationId: "listDeadLetters", summary: "A UTC day's dead letters (refused input) with their reasons, a page at a time", tag: "admin", security: "admin",
    query: DeadLetterQuery,
    responses: {
      200: { description: "letters, without their input", schema: DeadLetterList },
      503: { description: "R2 did not answer (storage_unavailable); retry", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/admin/dead-letters/replay", operationId: "replayDeadLetters", summary: "Run a page of a day's dead letters again; store what now resolves, delete letters fully resolved", tag: "admin", security: "admin",
    query: DeadLetterQuery,
    responses: {
      200: { description: "what was stored and what is still refused; the events of a client whose storage is still full stay in their letters as client_storage_full, to replay once it has more shards", schema: DeadLetterReplay },
      400: { description: "invalid query, or the day is older than the dedup tables", schema: ErrorBody },
      503: { description: "a Durable Object write failed, nothing deleted; or R2 did not answer (storage_unavailable), events stored before it come back as duplicates; retry", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/admin/audit", operationId: "listAuditEntries", summary: "The audit log, newest first, a page at a time (filters: time range, action or `auth.`-style kind, actor, target)", tag: "admin", security: "admin",
    query: AuditQuery, responses: { 200: { description: "entries; `next` is the next page's `before`", schema: AuditList } },
  },
  {
    method: "get", path: "/v1/admin/jobs", operationId: "listCronJobs", summary: "The Cron Trigger jobs: each one's latest run and state (overdue: its trigger stopped firing; unfinished: a run was cut off)", tag: "admin", security: "admin",
    responses: { 200: { description: "every job, with its cron and interval", schema: CronJobList } },
  },
  {
    method: "get", path: "/v1/billing", operationId: "getBillingLines", summary: "A day's billing lines (finance, admin)", tag: "billing", security: "session",
    query: BillingQuery,
    responses: {
      200: { description: "lines; revision 0 when never computed", schema: BillingResponse },
      403: { description: "no billing access", schema: ErrorBody },
      404: { description: "client_id names no client", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/billing/summary", operationId: "getBillingSummary", summary: "A period's billing (a month, to invoice it): per client and currency, per currency, and how final each day is (finance, admin)", tag: "billing", security: "session",
    query: BillingSummaryQuery,
    responses: {
      200: { description: "sums, and each day's revision and open clients", schema: BillingSummary },
      400: { description: `invalid period, or over ${MAX_SUMMARY_DAYS} days (range_too_large, details.max_days)`, schema: ErrorBody },
      403: { description: "no billing access", schema: ErrorBody },
      404: { description: "client_id names no client", schema: ErrorBody },
      422: { description: "the period's amounts pass 2^53 micros (amount_out_of_range)", schema: ErrorBody },
    },
  },
  {
    method: "post", path: "/v1/billing/{date}/run", operationId: "runBilling", summary: "Recompute a day, idempotently", tag: "billing", params: BillingDateParam, security: "admin",
    responses: {
      200: { description: "the day's revision after the run", schema: BillingRunResponse },
      400: { description: "not a day from 1999-12-31 to 2100-01-01", schema: ErrorBody },
      409: { description: "the day has not begun for any client, or another run changed it meanwhile", schema: ErrorBody },
      422: { description: "a line's amount is beyond what an integer of micros holds exactly (amount_out_of_range, naming it): fix its rate card", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/billing/{date}/download", operationId: "getBillingFileLink", summary: "A signed, expiring link to a revision's file (the day's current one by default); it serves that revision after a re-bill", tag: "billing",
    params: BillingDateParam, security: "session", query: DownloadQuery,
    responses: {
      200: { description: "signed URL", schema: DownloadResponse },
      403: { description: "no billing access", schema: ErrorBody },
      404: { description: "day not computed (billing_not_computed), or no such revision (revision_not_found)", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/billing/{date}/reconcile", operationId: "reconcileBilling", summary: "Billed counts against the Durable Object ledgers (and the lake for one client)",
    tag: "billing", params: BillingDateParam, security: "admin", query: ReconcileQuery,
    responses: {
      200: { description: "differences, if any", schema: ReconcileResponse },
      404: { description: "no such client", schema: ErrorBody },
      503: { description: "the client's waiting rows could not be written to the lake first (flush_failed), the lake's partition kept changing while it was listed (lake_busy), or a store did not answer; retry", schema: ErrorBody },
    },
  },
  {
    method: "get", path: "/v1/files/{key}", operationId: "downloadFile", tag: "billing",
    summary: "Streams an R2 object through a signed link (no session); the key keeps its slashes (billing/date=…/billing.csv): use the link as issued",
    security: "none", query: SignedFileQuery, ownQueryCheck: true,
    responses: {
      200: { description: "the file (CSV or Parquet), as an attachment", media: FILE_MEDIA, headers: ATTACHMENT },
      403: { description: "no valid exp or sig, bad signature, changed key or expiry, or expired (invalid_link)", schema: ErrorBody },
      404: { description: "file gone", schema: ErrorBody },
    },
  },
];

/**
 * What every operation of a kind can answer besides its own: the session middleware's 401, the
 * admin check's 403 and the cookie's origin check on writes, the validator's 400, the JSON body
 * reader's 413 and 415, and the 503 of a store that did not answer. An operation that documents a code itself keeps its own wording.
 */
function commonResponses(op: Operation): Operation["responses"] {
  const out: Operation["responses"] = {};
  const signedIn = op.security === "session" || op.security === "admin" || op.security === "live";
  const jsonRoute = op.body !== undefined && (signedIn || op.security === "none");
  if ((op.query && !op.ownQueryCheck) || op.body) {
    out[400] = { description: `invalid ${op.body ? "body" : "query"} (validation_failed, details: [{path, message}])${jsonRoute ? ", or a body that is not JSON (malformed_json)" : ""}`, schema: ErrorBody };
  }
  if (signedIn) out[401] = { description: "no valid session: none, expired, revoked or signed out (unauthenticated)", schema: ErrorBody };
  if (op.security === "admin") out[403] = { description: "not an admin (forbidden), or the session cookie from a page of another origin (forbidden_origin)", schema: ErrorBody };
  else if (signedIn && op.method !== "get") out[403] = { description: "the session cookie from a page of another origin (forbidden_origin)", schema: ErrorBody };
  // Every write of these takes at most DEFAULT_MAX_BODY, body or not (ingest and webhooks state their own limits).
  if (op.method !== "get" && (signedIn || op.security === "none")) out[413] = { description: `body over ${DEFAULT_MAX_BODY} bytes`, schema: ErrorBody };
  if (jsonRoute) out[415] = { description: "a body that is not JSON (unsupported_media_type)", schema: ErrorBody };
  if (op.path !== "/v1/openapi.json") out[503] = { description: "a store did not answer (session_store_unavailable, store_unavailable, storage_unavailable); retry", schema: ErrorBody };
  return out;
}

/**
 * Any other answer, in the same envelope: what no route chooses (a fault of ours, a method the path
 * does not take), so that an SDK reads every error one way.
 */
const DEFAULT_RESPONSE: Reply = {
  description: "any other error: 500 internal (a fault of ours, logged, never detailed), or 405 method_not_allowed (a method the path does not take; Allow lists those it does)",
  schema: ErrorBody,
  headers: { Allow: { description: "on a 405: the methods the path takes", schema: { type: "string" } } },
};

/** Formats JSON Schema defines; zod names checks of its own as formats too (`starts_with`), which strict validators refuse. */
const STANDARD_FORMATS = new Set(["date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname", "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template", "json-pointer", "relative-json-pointer", "regex"]);

const COMPONENT_REF = "#/components/schemas/";

/** Points zod's `#/$defs/X` references at the document's components. */
function componentRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(componentRefs);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, k === "$ref" && typeof v === "string" ? v.replace(/^#\/\$defs\//, COMPONENT_REF) : componentRefs(v)]),
  );
}

/**
 * `schema` as JSON Schema, the schemas named in schema/ (`.meta({ id })`) moved into `components`
 * and referenced. One name is one shape: a schema whose input and output differ must not be named.
 */
function jsonSchema(schema: z.ZodType, io: "input" | "output", components: Record<string, unknown>): unknown {
  const { $schema: _dialect, $defs, ...js } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io,
    unrepresentable: "any",
    // The pattern zod writes next to such a format says the same.
    override: ({ jsonSchema: def }) => {
      if (typeof def.format === "string" && !STANDARD_FORMATS.has(def.format)) delete def.format;
    },
  });
  for (const [id, def] of Object.entries($defs ?? {})) {
    const named = componentRefs(def);
    if (id in components && JSON.stringify(components[id]) !== JSON.stringify(named)) throw new Error(`schema ${id} has two shapes (${io})`);
    components[id] = named;
  }
  return componentRefs(js);
}

const SECURITY: Record<Security, Record<string, string[]>[]> = {
  session: [{ bearer: [] }, { cookie: [] }],
  admin: [{ bearer: [] }, { cookie: [] }],
  live: [{ bearer: [] }, { cookie: [] }, { ticket: [] }],
  ingestKey: [{ ingestKey: [] }],
  metaSignature: [{ metaSignature: [] }],
  none: [],
};

function response(r: Reply, code: string, components: Record<string, unknown>): Record<string, unknown> {
  // onError makes every 503 say when to retry.
  const headers = code === "503" ? { ...RETRY_AFTER, ...r.headers } : r.headers;
  const content = {
    ...(r.schema ? { "application/json": { schema: jsonSchema(r.schema, "output", components) } } : {}),
    ...Object.fromEntries(Object.entries(r.media ?? {}).map(([type, kind]) => [type, kind === "text" ? { schema: { type: "string" } } : {}])),
  };
  return {
    description: r.description,
    ...(headers ? { headers } : {}),
    ...(Object.keys(content).length ? { content } : {}),
  };
}

/** Builds the OpenAPI 3.1 document from OPERATIONS. */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const components: Record<string, unknown> = {};
  for (const op of OPERATIONS) {
    const pathSchemas = op.params ? (jsonSchema(op.params, "input", components) as { properties: Record<string, unknown> }).properties : {};
    const params: { name: string; in: "path" | "query"; required: boolean; schema: unknown }[] = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1]!,
      in: "path",
      required: true,
      schema: pathSchemas[m[1]!] ?? { type: "string" },
    }));
    if (op.query) {
      const q = jsonSchema(op.query, "input", components) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        params.push({ name, in: "query", required: (q.required ?? []).includes(name), schema });
      }
    }
    const body = op.body
      ? {
          required: !op.bodyOptional,
          content: {
            "application/json": { schema: jsonSchema(op.body, "input", components) },
            ...Object.fromEntries(Object.entries(op.bodyTypes ?? {}).map(([type, description]) => [type, { schema: { type: "string", description } }])),
          },
        }
      : undefined;
    const replies: Record<string, Reply> = { ...commonResponses(op), ...op.responses, default: DEFAULT_RESPONSE };
    (paths[op.path] ??= {})[op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      tags: [op.tag],
      security: SECURITY[op.security],
      ...(params.length ? { parameters: params } : {}),
      ...(body ? { requestBody: body } : {}),
      responses: Object.fromEntries(Object.entries(replies).map(([code, r]) => [code, response(r, code, components)])),
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "zapmeter", version: "1", description: "Counts, shows, stores and bills WhatsApp notifications." },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "session token from POST /v1/auth/login" },
        cookie: { type: "apiKey", in: "cookie", name: SESSION_COOKIE },
        ticket: { type: "apiKey", in: "query", name: "ticket", description: "one-use WebSocket ticket from POST /v1/live/ticket (opens the socket without other credentials)" },
        ingestKey: { type: "http", scheme: "bearer", description: "ingest API key (POST /v1/admin/api-keys)" },
        metaSignature: { type: "apiKey", in: "header", name: "X-Hub-Signature-256", description: "sha256=HMAC(raw body, app secret)" },
      },
    },
  };
}
