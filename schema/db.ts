import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ROLES } from "./api.ts";
import { CATEGORIES } from "./event.ts";

/** Business clients; one ClientCounter Durable Object each (per shard). */
export const clients = sqliteTable("clients", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  timezone: text("timezone").notNull().default("UTC"),
  currency: text("currency").notNull().default("BRL"),
  shards: integer("shards").notNull().default(1),
  active: integer("active", { mode: "boolean" }).notNull().default(true),
  createdAt: integer("created_at").notNull(),
});

/** WhatsApp sending numbers → client, for webhook routing. */
export const phoneNumbers = sqliteTable(
  "phone_numbers",
  {
    phoneNumberId: text("phone_number_id").primaryKey(),
    clientId: text("client_id")
      .notNull()
      .references(() => clients.id),
  },
  (t) => [index("phone_numbers_client").on(t.clientId)],
);

/**
 * A number's earlier owners: `client_id` owned `phone_number_id` until `released_at`. A status that
 * happened before a number moved is its earlier owner's, so a webhook Meta retries after the move
 * (for up to 7 days) is deduplicated and billed where the first delivery was, not counted again.
 */
export const phoneNumberReleases = sqliteTable(
  "phone_number_releases",
  {
    phoneNumberId: text("phone_number_id").notNull(),
    clientId: text("client_id")
      .notNull()
      .references(() => clients.id),
    releasedAt: integer("released_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.phoneNumberId, t.releasedAt] })],
);

/** Prices per billable message; client_id NULL is the default card, country '*' any market. */
export const rateCards = sqliteTable(
  "rate_cards",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    clientId: text("client_id").references(() => clients.id),
    category: text("category", { enum: CATEGORIES }).notNull(),
    country: text("country").notNull().default("*"),
    unitPriceMicros: integer("unit_price_micros").notNull(),
    currency: text("currency").notNull(),
    validFrom: integer("valid_from").notNull(),
  },
  // SQLite treats NULL client_ids as distinct, so PUT /v1/admin/rate-cards updates, else inserts, in one batch.
  (t) => [uniqueIndex("rate_cards_key").on(t.clientId, t.category, t.country, t.validFrom)],
);

/** One line per client × category × country × day; `revision` moves only when lines change. */
export const billingDaily = sqliteTable(
  "billing_daily",
  {
    date: text("date").notNull(),
    clientId: text("client_id").notNull(),
    category: text("category").notNull(),
    country: text("country").notNull(),
    billableCount: integer("billable_count").notNull(),
    unitPriceMicros: integer("unit_price_micros").notNull(),
    amountMicros: integer("amount_micros").notNull(),
    currency: text("currency").notNull(),
    revision: integer("revision").notNull(),
    computedAt: integer("computed_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.date, t.clientId, t.category, t.country] })],
);

/**
 * A client's billing day whose ledger changed after the day was due (a late event, a replayed dead
 * letter): the next billing tick bills it again, whenever its cron window was. Written by the
 * client's ClientCounter, deleted by the tick that re-billed it.
 */
export const billingRebills = sqliteTable(
  "billing_rebills",
  {
    date: text("date").notNull(),
    clientId: text("client_id").notNull(),
    markedAt: integer("marked_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.date, t.clientId] })],
);

/** Each billing computation of a day (cron or on demand). */
export const billingRuns = sqliteTable(
  "billing_runs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    date: text("date").notNull(),
    trigger: text("trigger").notNull(),
    startedAt: integer("started_at").notNull(),
    finishedAt: integer("finished_at"),
    status: text("status").notNull(),
    clients: integer("clients").notNull().default(0),
    lines: integer("lines").notNull().default(0),
    revision: integer("revision"),
    error: text("error"),
  },
  (t) => [index("billing_runs_date").on(t.date)],
);

export const users = sqliteTable("users", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  email: text("email").notNull().unique(),
  passwordHash: text("password_hash").notNull(),
  role: text("role", { enum: ROLES }).notNull(),
  active: integer("active", { mode: "boolean" }).notNull().default(true),
  createdAt: integer("created_at").notNull(),
  /** Epoch ms: sessions issued before it are over (set when the password is reset or the user deactivated). */
  sessionsValidFrom: integer("sessions_valid_from").notNull().default(0),
});

/** Which clients a viewer may see. */
export const userClients = sqliteTable(
  "user_clients",
  {
    userId: integer("user_id")
      .notNull()
      .references(() => users.id),
    clientId: text("client_id")
      .notNull()
      .references(() => clients.id),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId] })],
);

/** Ingest API keys, stored as SHA-256 of the key; optionally scoped to one client. */
export const apiKeys = sqliteTable("api_keys", {
  id: text("id").primaryKey(),
  hash: text("hash").notNull().unique(),
  scope: text("scope", { enum: ["ingest"] }).notNull(),
  clientId: text("client_id").references(() => clients.id),
  label: text("label"),
  createdAt: integer("created_at").notNull(),
  revokedAt: integer("revoked_at"),
});

/** Sessions revoked before their expiry (logout, rotation); rows past expires_at can be purged. */
export const revokedSessions = sqliteTable("revoked_sessions", {
  jti: text("jti").primaryKey(),
  expiresAt: integer("expires_at").notNull(),
  /** The session a cookie rotation replaced this one with: a sign-out with the old cookie ends it too. */
  replacedBy: text("replaced_by"),
  /** When that rotation happened (ms), which starts the old cookie's grace (`ROTATED_SESSION_GRACE_MS`). */
  replacedAt: integer("replaced_at"),
});

/**
 * Sign-in attempts per key (`email:`, `device:` or `session:` and the subject's id, `ip:` and the
 * caller's address) in the current window, and until when the key is locked. Every attempt counts
 * before its password is checked; a right one takes its attempt back (workers/auth/login-throttle.ts).
 */
export const loginFailures = sqliteTable("login_failures", {
  key: text("key").primaryKey(),
  windowStart: integer("window_start").notNull(),
  failures: integer("failures").notNull(),
  lockedUntil: integer("locked_until").notNull(),
});

/**
 * One-use WebSocket tickets for cross-origin dashboards (stored hashed), with the session that asked
 * for one: the socket it opens is that session's, refused if it was revoked meanwhile and closed when
 * it expires (tickets issued before these columns existed carry an expired session: their sockets
 * close at once and the dashboard asks for a new ticket).
 */
export const liveTickets = sqliteTable("live_tickets", {
  hash: text("hash").primaryKey(),
  userId: integer("user_id").notNull(),
  clientId: text("client_id"),
  expiresAt: integer("expires_at").notNull(),
  usedAt: integer("used_at"),
  sessionId: text("session_id").notNull().default(""),
  sessionExpiresAt: integer("session_expires_at").notNull().default(0),
});

/** Who did what: exports, billing downloads, admin changes. */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at").notNull(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target"),
    details: text("details"),
  },
  (t) => [index("audit_log_at").on(t.at)],
);

/**
 * Each Cron Trigger job's latest run (workers/cron-runs.ts): a trigger that stopped firing writes
 * nothing, so what tells it is a start that is too old.
 */
export const cronJobRuns = sqliteTable("cron_job_runs", {
  job: text("job").primaryKey(),
  startedAt: integer("started_at").notNull(),
  /** Null from a run's start until it ends; a run the runtime cut off never sets it. */
  finishedAt: integer("finished_at"),
  /** The latest finished run's outcome and, when it failed, its error's message. */
  failed: integer("failed", { mode: "boolean" }).notNull().default(false),
  error: text("error"),
  lastOkAt: integer("last_ok_at"),
});
