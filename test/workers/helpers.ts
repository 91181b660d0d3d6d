import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { drizzle } from "drizzle-orm/d1";
import { vi } from "vitest";
import { messageShard } from "../../durable-objects/client-shards.ts";
import { apiKeys, users } from "../../schema/db.ts";
import { sha256Hex, toHex, hmacSha256 } from "../../workers/auth/crypto.ts";
import { issueSession } from "../../workers/auth/session.ts";
import { app } from "../../workers/app.ts";

export const BASE = "http://zapmeter.test";
let counter = 0;

/** A name unique within this test file's storage (storage is shared by the tests of a file). */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Calls the Worker as a client would; with `overrides`, the app with those bindings replaced (`withEnv`). */
export function call(path: string, init: RequestInit = {}, overrides?: Partial<Env>): Promise<Response> {
  return overrides ? withEnv(overrides, path, init) : exports.default.fetch(new Request(`${BASE}${path}`, init));
}

/** Calls the app with some bindings replaced (a production configuration, a store that fails). */
export async function withEnv(overrides: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`${BASE}${path}`, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/**
 * A binding (an R2 bucket, D1) with some methods replaced (a fault, a race, small listing pages); the
 * rest are its own.
 */
export function withMethods<T extends object>(binding: T, over: Partial<T>): T {
  return new Proxy(binding, {
    get(target, prop) {
      if (prop in over) return over[prop as keyof T];
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/**
 * D1 as Cloudflare counts it for one Worker invocation: every statement, alone or in a batch,
 * against `limit` queries, refused past it (local D1 counts nothing). `used()` says how many.
 */
export function d1WithQueryLimit(limit = 1_000): { DB: D1Database; used: () => number } {
  let used = 0;
  const spend = (n: number) => {
    used += n;
    if (used > limit) throw new Error("D1_ERROR: Too many API requests by single worker invocation.");
  };
  const statement = (s: D1PreparedStatement): D1PreparedStatement =>
    withMethods(s, {
      bind: (...values: unknown[]) => statement(s.bind(...values)),
      all: <T,>() => (spend(1), s.all<T>()),
      run: <T,>() => (spend(1), s.run<T>()),
      first: <T,>(col?: string) => (spend(1), col === undefined ? s.first<T>() : s.first<T>(col)),
      raw: <T,>(o?: { columnNames?: boolean }) => (spend(1), s.raw<T>(o as never)),
    } as Partial<D1PreparedStatement>);
  const DB = withMethods(env.DB, {
    prepare: (q: string) => statement(env.DB.prepare(q)),
    batch: <T,>(statements: D1PreparedStatement[]) => (spend(statements.length), env.DB.batch<T>(statements)),
  });
  return { DB, used: () => used };
}

/**
 * D1 whose batches holding a statement whose SQL matches `marked` go to `markedBatch`, as does such
 * a statement read alone (`all`, as a batch of one); other statements and batches go through.
 */
export function d1WithMarkedBatches(marked: RegExp, markedBatch: <T>(statements: D1PreparedStatement[]) => Promise<D1Result<T>[]>): D1Database {
  // The statements handed out, each to the bound statement it stands for.
  const tagged = new WeakMap<object, D1PreparedStatement>();
  return withMethods(env.DB, {
    batch: <T,>(statements: D1PreparedStatement[]) => {
      const bound = statements.map((st) => tagged.get(st) ?? st);
      return statements.some((st) => tagged.has(st)) ? markedBatch<T>(bound) : env.DB.batch<T>(bound);
    },
    prepare: (query: string) => {
      const statement = env.DB.prepare(query);
      if (!marked.test(query)) return statement;
      return withMethods(statement, {
        bind: (...values: unknown[]) => {
          const bound = statement.bind(...values);
          const handed = withMethods(bound, { all: async <T,>() => (await markedBatch<T>([bound]))[0]! });
          tagged.set(handed, bound);
          return handed;
        },
      });
    },
  });
}

/**
 * D1 whose first batch holding a statement matching `marked` (or its first read of one alone) is
 * held: `reached` resolves once the request got that far, and the batch goes on only after
 * `release()`. With `after`, the batch runs at D1 first and only its answer is held (the request has
 * read, and is about to act on it).
 */
export function gatedDb(marked: RegExp, after = false) {
  const hold = holdPoint();
  let used = false;
  const DB = d1WithMarkedBatches(marked, async <T,>(statements: D1PreparedStatement[]) => {
    if (used) return env.DB.batch<T>(statements);
    used = true;
    if (after) {
      const result = await env.DB.batch<T>(statements);
      await hold.wait();
      return result;
    }
    await hold.wait();
    return env.DB.batch<T>(statements);
  });
  return { DB, reached: hold.reached, release: hold.release };
}

/** The lake bucket, its first put of `key` held like gatedDb's batch until `release()`. */
export function gatedBucket(key: string) {
  const { bucket, holds } = gatedPuts(key, 1);
  return { bucket, ...holds[0]! };
}

/** The lake bucket, each of its first `count` puts of `key` held until its own hold's `release()`. */
export function gatedPuts(key: string, count: number) {
  const holds = Array.from({ length: count }, () => holdPoint());
  let puts = 0;
  const bucket = withMethods(env.LAKE, {
    put: (async (k: string, ...rest: [never, never]) => {
      if (k === key && puts < count) await holds[puts++]!.wait();
      return env.LAKE.put(k, ...rest);
    }) as R2Bucket["put"],
  });
  return { bucket, holds: holds.map(({ reached, release }) => ({ reached, release })) };
}

/** Where a held request waits: `reached` resolves when it gets there, and it goes on after `release()`. */
function holdPoint() {
  let arrive!: () => void;
  const reached = new Promise<void>((r) => (arrive = r));
  let release!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  return {
    reached,
    release: () => release(),
    wait: async () => {
      arrive();
      await opened;
    },
  };
}

/** A fresh message id that a client of `shards` shards keeps in `shard`. */
export function messageIn(shard: number, shards: number): string {
  for (;;) {
    const m = unique("wamid");
    if (messageShard(m, shards) === shard) return m;
  }
}

/**
 * D1 whose first batch fails as a lost connection and which answers nothing from then on: a change
 * whose write failed cannot then read what D1 holds.
 */
export function d1DownFromFirstBatch(): D1Database {
  let down = false;
  return withMethods(env.DB, {
    batch: () => {
      down = true;
      return Promise.reject(new Error("D1_ERROR: Network connection lost."));
    },
    prepare: (query: string) => {
      if (down) throw new Error("D1 is down");
      return env.DB.prepare(query);
    },
  });
}

/**
 * D1 refusing, as a lost connection, every batch that holds a statement whose SQL `refused` matches;
 * other statements and batches go through.
 */
export function d1RefusingBatchesOf(refused: RegExp): D1Database {
  return d1WithMarkedBatches(refused, () => Promise.reject(new Error("D1_ERROR: Network connection lost.")));
}

/** The lake bucket with its writes failing, as when R2 is down. */
export const failingBucket = withMethods(env.LAKE, { put: () => Promise.reject(new Error("R2 is down")) });

/** The lake bucket, its first put refused as R2 down refuses it, the later ones written. */
export function putFailingOnce(): R2Bucket {
  let failed = false;
  return withMethods(env.LAKE, {
    put: ((...args: Parameters<R2Bucket["put"]>) => {
      if (failed) return env.LAKE.put(...args);
      failed = true;
      return Promise.reject(new Error("R2 is down"));
    }) as R2Bucket["put"],
  });
}

export function db() {
  return drizzle(env.DB);
}

/**
 * Creates a user directly in D1 and returns a session token for it, minted as login does (login itself
 * is tested in sessions.test.ts and security.test.ts; minting skips its PBKDF2 work).
 */
export async function signIn(role: "admin" | "finance" | "viewer" = "admin", clientIds: string[] = [], now = Date.now()): Promise<string> {
  const email = `${unique(role)}@example.com`;
  const [u] = await db()
    .insert(users)
    .values({ email, passwordHash: "unusable: signs in through minted sessions only", role, createdAt: Date.now() })
    .returning();
  if (clientIds.length > 0) {
    await env.DB.batch(clientIds.map((c) => env.DB.prepare("INSERT INTO user_clients (user_id, client_id) VALUES (?, ?)").bind(u!.id, c)));
  }
  return (await issueSession(env.SESSION_SECRET, u!.id, now)).token;
}

/** Date.now as it was when this module loaded, before any test answered it with its own clock. */
const realNow = Date.now.bind(Date);

let adminToken: Promise<string> | undefined;
/**
 * One admin session per test file, issued on the real clock whichever test asks first: issued on a
 * clock a test moved (withClock), it would be from the future, or expired, for the tests after it.
 */
export function admin(): Promise<string> {
  adminToken ??= signIn("admin", [], realNow());
  return adminToken;
}

export function authed(token: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` } };
}

export function postJson(path: string, body: unknown, token?: string, method = "POST"): Promise<Response> {
  const init: RequestInit = { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  return call(path, token ? authed(token, init) : init);
}

/** Creates a client through the admin API. */
export async function createClient(opts: { id?: string; phones?: string[]; timezone?: string; shards?: number } = {}): Promise<{ id: string; phones: string[] }> {
  const id = opts.id ?? unique("client");
  const phones = opts.phones ?? [unique("pn")];
  const body = { id, name: `Client ${id}`, timezone: opts.timezone ?? "UTC", phone_number_ids: phones, ...(opts.shards ? { shards: opts.shards } : {}) };
  const res = await postJson("/v1/admin/clients", body, await admin());
  if (res.status !== 201) throw new Error(`create client failed: ${res.status} ${await res.text()}`);
  return { id, phones };
}

/** An ingest key stored hashed, optionally scoped to a client. */
export async function ingestKey(clientId: string | null = null): Promise<string> {
  const key = `zmk_test_${unique("k")}`;
  await db().insert(apiKeys).values({ id: unique("key"), hash: await sha256Hex(key), scope: "ingest", clientId, createdAt: Date.now() });
  return key;
}

export async function sign(body: string, secret = env.WHATSAPP_APP_SECRET): Promise<string> {
  return `sha256=${toHex(await hmacSha256(secret, body))}`;
}

/** POSTs a webhook body signed with the app secret (or the given signature header). */
export async function postWebhook(payload: unknown, signature?: string | null): Promise<Response> {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  const headers: Record<string, string> = { "content-type": "application/json" };
  const sig = signature === undefined ? await sign(body) : signature;
  if (sig !== null) headers["x-hub-signature-256"] = sig;
  return call("/v1/webhooks/whatsapp", { method: "POST", headers, body });
}

export function postEvents(body: string | unknown, key: string, contentType = "application/json"): Promise<Response> {
  return call("/v1/ingest/events", {
    method: "POST",
    headers: { "content-type": contentType, authorization: `Bearer ${key}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** All dead letters currently in R2, parsed. */
export async function deadLetters(): Promise<{ key: string; body: { source: string; rejections: { at: unknown; code: string }[]; input: string } }[]> {
  const out = [];
  let cursor: string | undefined;
  do {
    const page = await env.LAKE.list({ prefix: "dlq/", cursor });
    for (const o of page.objects) out.push({ key: o.key, body: JSON.parse(await (await env.LAKE.get(o.key))!.text()) });
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}

export async function counters(clientId: string, from: string, to: string, token?: string) {
  const res = await call(`/v1/clients/${clientId}/counters?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, authed(token ?? (await admin())));
  return { status: res.status, body: (await res.json()) as { client_id: string; minutes: Record<string, number>[] } };
}

/** The loopback stub runs `scheduled` as workerd dispatches a cron; its generated type (Fetcher) omits it. */
const scheduledWorker = exports.default as unknown as { scheduled(opts: { cron: string; scheduledTime: number }): Promise<unknown> };

/** Fires a Cron Trigger through the Worker's scheduled entry point, as of `scheduledTime` (epoch ms). */
export async function runCron(cron: string, scheduledTime: number): Promise<void> {
  await scheduledWorker.scheduled({ cron, scheduledTime });
}

/**
 * Runs `fn` with `Date.now()` answered by `now`: the tests, the Worker and the objects share one
 * isolate, so they all read that clock.
 */
export async function withClock<T>(now: () => number, fn: () => Promise<T>): Promise<T> {
  const clock = vi.spyOn(Date, "now").mockImplementation(now);
  try {
    return await fn();
  } finally {
    clock.mockRestore();
  }
}

/** Runs `fn` with the clock `ms` ahead instead of waiting that long. */
export async function withClockAhead<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now.bind(Date);
  return withClock(() => realNow() + ms, fn);
}
