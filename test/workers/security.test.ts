import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { sign } from "hono/jwt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { statusObject, webhook } from "../../scripts/demo/whatsapp-payload.ts";
import { DEV_INGEST_KEY, DEV_PASSWORD } from "../../schema/dev-credentials.ts";
import { ROTATED_SESSION_GRACE_MS } from "../../workers/auth/session.ts";
import { BASE, authed, call, createClient, db, postJson, postWebhook, sign as metaSignature, signIn, unique, withClockAhead, withEnv, withMethods } from "./helpers.ts";
import { apiKeys, users } from "../../schema/db.ts";
import { sha256Hex } from "../../workers/auth/crypto.ts";
import { callerNetwork } from "../../workers/auth/login-throttle.ts";
import { hashPassword } from "../../workers/auth/password.ts";
import type { AppEnv } from "../../workers/app-env.ts";
import { ApiError, onError } from "../../workers/errors.ts";
import { NEEDED_MIGRATION } from "../../workers/routes/health.ts";
import { DAY_MS } from "../../schema/time.ts";
import { ingest, runDay, status } from "./billing-fixtures.ts";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";

/** The answer to `run`, and the JSON lines logged at `level` meanwhile. */
async function linesOf(level: "error" | "warn", run: () => Promise<Response>): Promise<{ status: number; headers: Headers; body: unknown; lines: Record<string, unknown>[] }> {
  const logged = vi.spyOn(console, level).mockImplementation(() => {});
  try {
    const res = await run();
    return { status: res.status, headers: res.headers, body: await res.json(), lines: logged.mock.calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>) };
  } finally {
    logged.mockRestore();
  }
}

const STRONG = {
  ENVIRONMENT: "production",
  WHATSAPP_APP_SECRET: "a-strong-app-secret-0123456789",
  WHATSAPP_VERIFY_TOKEN: "a-strong-verify-token-0123456789",
  SESSION_SECRET: "a-strong-session-secret-0123456789",
  FILE_SIGNING_SECRET: "a-strong-file-secret-0123456789",
};

/** The SESSION_SECRET an operator rotates to; the suite's own becomes SESSION_SECRET_PREVIOUS. */
const NEW_SESSION_SECRET = "the-new-session-secret-0123456789";

afterEach(() => vi.restoreAllMocks());

describe("production mode", () => {
  it("refuses to serve with any dev, short or missing secret", async () => {
    for (const [name, bad] of [
      ...Object.entries({
        WHATSAPP_APP_SECRET: "dev-app-secret",
        WHATSAPP_VERIFY_TOKEN: "dev-verify-token",
        SESSION_SECRET: "dev-session-secret-change-me",
        FILE_SIGNING_SECRET: "dev-file-signing-secret",
      }),
      // Not a dev value, but guessable: 15 characters.
      ["SESSION_SECRET", "fifteen-chars-x"],
      ["FILE_SIGNING_SECRET", ""],
    ]) {
      const res = await withEnv({ ...STRONG, [name!]: bad }, "/v1/me");
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("insecure_configuration");
    }
    expect((await withEnv(STRONG, "/v1/openapi.json")).status).toBe(200);
  });

  /** `/health`'s status with `overrides` over a fit production configuration, and the secrets its one log line names. */
  async function refusedSecrets(overrides: Partial<Env>): Promise<[number, string[] | undefined]> {
    const res = await linesOf("error", () => withEnv({ ...STRONG, ...overrides }, "/health"));
    const lines = res.lines as { event: string; secrets: string[] }[];
    expect(lines.map((l) => l.event)).toEqual(["insecure_configuration"]);
    return [res.status, lines[0]!.secrets.sort()];
  }

  it("takes a deploy whose ENVIRONMENT is missing or misspelt for production: refuses the dev secrets", async () => {
    const dev = { WHATSAPP_APP_SECRET: "dev-app-secret", WHATSAPP_VERIFY_TOKEN: "dev-verify-token", SESSION_SECRET: "dev-session-secret-change-me", FILE_SIGNING_SECRET: "dev-file-signing-secret" };
    for (const environment of [undefined, "", "Production", "prod", "staging"]) {
      const res = await linesOf("error", () => withEnv({ ...dev, ENVIRONMENT: environment as string }, "/health"));
      expect([environment, res.status, (res.body as { error: { code: string } }).error.code]).toEqual([environment, 503, "insecure_configuration"]);
    }
    expect((await withEnv({ ...dev, ENVIRONMENT: "development" }, "/health")).status).toBe(200);
  });

  it("refuses a previous secret that is short or a dev value; serves with a fit one, or none", async () => {
    for (const [name, bad] of [
      ["SESSION_SECRET_PREVIOUS", "fifteen-chars-x"],
      ["SESSION_SECRET_PREVIOUS", "dev-session-secret-change-me"],
      ["FILE_SIGNING_SECRET_PREVIOUS", "dev-file-signing-secret"],
      // Another secret's dev value is as public as its own.
      ["FILE_SIGNING_SECRET_PREVIOUS", "dev-session-secret-change-me"],
      ["SESSION_SECRET", "dev-file-signing-secret"],
    ]) {
      expect([name, ...(await refusedSecrets({ [name!]: bad }))]).toEqual([name, 503, [name]]);
    }
    const previous = { SESSION_SECRET_PREVIOUS: "the-session-secret-before-0123456789", FILE_SIGNING_SECRET_PREVIOUS: "the-file-secret-before-0123456789" };
    expect((await withEnv({ ...STRONG, ...previous }, "/health")).status).toBe(200);
  });

  it("refuses an app secret holding whitespace (a paste's), with which no webhook's signature would match", async () => {
    for (const bad of [" a-strong-app-secret-0123456789", "a-strong-app-secret-0123456789\n", "a-strong-app-secret-0123456789\r\n", "a-strong-app\tsecret-0123456789"]) {
      expect([bad, ...(await refusedSecrets({ WHATSAPP_APP_SECRET: bad }))]).toEqual([bad, 503, ["WHATSAPP_APP_SECRET"]]);
    }
  });

  it("refuses two secrets of one value, naming both: a rotation that rotated nothing, a key shared by two purposes", async () => {
    for (const [name, sameAs] of [
      ["SESSION_SECRET_PREVIOUS", "SESSION_SECRET"],
      ["FILE_SIGNING_SECRET_PREVIOUS", "FILE_SIGNING_SECRET"],
      ["FILE_SIGNING_SECRET", "SESSION_SECRET"],
      ["FILE_SIGNING_SECRET_PREVIOUS", "SESSION_SECRET"],
      ["WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET"],
    ] as const) {
      expect([name, ...(await refusedSecrets({ [name]: STRONG[sameAs] }))]).toEqual([name, 503, [name, sameAs].sort()]);
    }
  });

  it("logs one line naming the bad secrets, which the answer does not name", async () => {
    const res = await linesOf("error", () => withEnv({ ...STRONG, SESSION_SECRET: "dev-session-secret-change-me" }, "/health"));
    expect(res.lines).toEqual([{ level: "error", event: "insecure_configuration", request_id: expect.any(String), path: "/health", secrets: ["SESSION_SECRET"] }]);
    expect(JSON.stringify(res.body)).not.toContain("SESSION_SECRET");
  });

  it("refuses the seed's ingest key, even where a seeded database holds it", async () => {
    const hash = await sha256Hex(DEV_INGEST_KEY);
    await db().insert(apiKeys).values({ id: unique("seeded"), hash, scope: "ingest", createdAt: Date.now() }).onConflictDoNothing();
    const init = { method: "POST", headers: { authorization: `Bearer ${DEV_INGEST_KEY}`, "content-type": "application/json" }, body: "[]" };
    expect((await call("/v1/ingest/events", init)).status).toBe(200);
    const res = await withEnv(STRONG, "/v1/ingest/events", init);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
  });

  it("refuses the dev users' password at sign-in", async () => {
    const email = `${unique("prod")}@example.com`;
    await db().insert(users).values({ email, passwordHash: await hashPassword(DEV_PASSWORD), role: "admin", createdAt: Date.now() });
    const res = await withEnv(STRONG, "/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password: DEV_PASSWORD }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("password_change_required");
  });
});

describe("health", () => {
  it("answers 200 when D1 and R2 answer, 503 unhealthy (retryable) naming the one that does not", async () => {
    expect(await (await call("/health")).json()).toEqual({ ok: true, d1: true, r2: true, jobs: expect.any(Object) });
    const down = () => {
      throw new Error("storage down");
    };
    const deadR2 = { ...env.LAKE, head: async () => down() } as unknown as R2Bucket;
    const deadD1 = { prepare: down, batch: down, exec: down } as unknown as D1Database;
    for (const [overrides, details] of [
      [{ LAKE: deadR2 }, { d1: true, r2: false }],
      [{ DB: deadD1 }, { d1: false, r2: true }],
    ] as const) {
      const res = await linesOf("error", () => withEnv(overrides, "/health"));
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: { code: "unhealthy", message: expect.any(String), details } });
      // The line says which store, as the answer does.
      expect(res.lines).toEqual([expect.objectContaining({ event: "unhealthy", path: "/health", details })]);
    }
  });

  it("answers 503 missing_bindings on every route while a binding is missing, naming them in the log only", async () => {
    const { phones } = await createClient();
    const body = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: unique("wamid"), status: "sent", timestamp: Math.floor(Date.now() / 1000) })] }]));
    const signed = { method: "POST", headers: { "content-type": "application/json", "x-hub-signature-256": await metaSignature(body) }, body };
    for (const [path, init] of [["/health", {}], ["/v1/webhooks/whatsapp", signed], ["/v1/clients", authed(await signIn("admin"))]] as const) {
      for (const missing of [["DB"], ["LAKE"], ["CLIENT_COUNTER"], ["OVERVIEW"], ["DB", "OVERVIEW"]]) {
        const res = await linesOf("error", () => withEnv(Object.fromEntries(missing.map((name) => [name, undefined])), path, init));
        expect([path, missing, res.status, res.headers.get("retry-after"), res.body, res.lines]).toEqual([
          path,
          missing,
          503,
          "1",
          { error: { code: "missing_bindings", message: "the service is missing bindings; see the deploy section of the README" } },
          [{ level: "error", event: "missing_bindings", request_id: expect.any(String), path, bindings: missing }],
        ]);
      }
    }
  });

  it("answers 503 migrations_not_applied while D1 lacks this code's newest migration, or every one, naming it in the log only", async () => {
    const applied = await env.DB.prepare("select id, applied_at from d1_migrations where name = ?").bind(NEEDED_MIGRATION).first<{ id: number; applied_at: string }>();
    expect(applied).not.toBeNull();
    const lacking = async (): Promise<unknown[]> => {
      const res = await linesOf("error", () => call("/health"));
      return [res.status, res.headers.get("retry-after"), res.body, res.lines];
    };
    const refused = [
      503,
      "1",
      { error: { code: "migrations_not_applied", message: "the database lacks migrations; see the deploy section of the README" } },
      [{ level: "error", event: "migrations_not_applied", request_id: expect.any(String), path: "/health", migration: NEEDED_MIGRATION }],
    ];
    // `wrangler deploy` run without `npm run deploy`: the code of a migration that was not applied.
    await env.DB.prepare("delete from d1_migrations where name = ?").bind(NEEDED_MIGRATION).run();
    try {
      expect(await lacking()).toEqual(refused);
    } finally {
      await env.DB.prepare("insert into d1_migrations (id, name, applied_at) values (?, ?, ?)").bind(applied!.id, NEEDED_MIGRATION, applied!.applied_at).run();
    }
    // A database no migration was ever applied to has no d1_migrations table.
    await env.DB.exec("alter table d1_migrations rename to d1_migrations_away");
    try {
      expect(await lacking()).toEqual(refused);
    } finally {
      await env.DB.exec("alter table d1_migrations_away rename to d1_migrations");
    }
    expect(await (await call("/health")).json()).toEqual({ ok: true, d1: true, r2: true, jobs: expect.any(Object) });
  });
});

describe("errors", () => {
  it("answers a server-side HTTPException of a library as internal, logged and not echoed", async () => {
    const app = new Hono<AppEnv>().onError(onError);
    app.get("/fails", () => {
      throw new HTTPException(500, { message: "connection string postgres://secret" });
    });
    const res = await linesOf("error", async () => app.request("/fails"));
    expect([res.status, res.body]).toEqual([500, { error: { code: "internal", message: "internal error" } }]);
    expect(res.lines).toEqual([expect.objectContaining({ event: "unhandled", error: { name: "Error", message: "connection string postgres://secret" } })]);
  });

  it("says when to retry on every 503, a route's own too; not on other errors", async () => {
    const app = new Hono<AppEnv>().onError(onError);
    app.get("/:status", (c) => {
      throw new ApiError(Number(c.req.param("status")) as 503, "some_code", "refused");
    });
    const retryAfter = async (status: number) => (await linesOf("error", async () => app.request(`/${status}`))).headers.get("retry-after");
    expect([await retryAfter(503), await retryAfter(409), await retryAfter(500)]).toEqual(["1", null, null]);
  });

  it("answers 503 with retry-after for each error D1 and Durable Objects document as retryable, 500 for a fault of ours", async () => {
    // developers.cloudflare.com/d1/observability/debug-d1/ and /durable-objects/best-practices/error-handling/
    const retryable = [
      "D1_ERROR: Network connection lost.",
      "D1_ERROR: Internal error in D1 DB storage caused object to be reset.",
      "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.",
      "D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.",
      "D1_ERROR: D1 DB's isolate exceeded its memory limit and was reset.",
      "D1_ERROR: D1 DB exceeded its CPU time limit and was reset.",
      "D1_ERROR: D1 DB is overloaded. Requests queued for too long.",
      "D1_ERROR: D1 DB is overloaded. Too many requests queued.",
      "Durable Object reset because its code was updated.",
      "Durable Object is overloaded. Too many requests queued.",
      // developers.cloudflare.com/durable-objects/observability/troubleshooting/ ("Common errors")
      "Your account is generating too much load on Durable Objects. Please back off and try again later.",
      "Connection closed: this Durable Object instance is no longer active. Reconnect or retry the request.",
      "Durable Object connection closed because the object was reset.",
      "Durable Object storage operation exceeded timeout which caused object to be reset.",
      "Your account is doing too many concurrent storage operations. Please back off and try again later.",
    ];
    // A full database is not outlived by retrying the same request.
    for (const message of [...retryable, "D1_ERROR: no such column: nope: SQLITE_ERROR", "database or disk is full: SQLITE_FULL"]) {
      const app = new Hono<AppEnv>().onError(onError);
      app.get("/fails", () => {
        throw new Error("Failed query: select 1", { cause: new Error(message) });
      });
      const res = await linesOf("error", async () => app.request("/fails"));
      const expected = retryable.includes(message) ? [503, "storage_unavailable", "1"] : [500, "internal", null];
      expect([message, res.status, (res.body as { error: { code: string } }).error.code, res.headers.get("retry-after")]).toEqual([message, ...expected]);
    }
  });

  it("answers 503 with retry-after for a Durable Object error flagged .retryable or .overloaded, whatever its message, on a counters read, the clients list and a live upgrade", async () => {
    // developers.cloudflare.com/durable-objects/best-practices/error-handling/: the runtime flags what
    // may be retried (with backoff), whatever it says.
    const { id } = await createClient();
    const token = await signIn("admin");
    const generic = "internal error; reference = 0123456789abcdef";
    const flagged = (flags: { retryable?: boolean; overloaded?: boolean }) => Object.assign(new Error(generic), flags);
    const failures: [string, Error, number][] = [
      ["retryable", flagged({ retryable: true }), 503],
      ["overloaded", flagged({ overloaded: true }), 503],
      ["retryable cause", new Error("Failed to read", { cause: flagged({ retryable: true }) }), 503],
      ["not retryable", flagged({ retryable: false, overloaded: false }), 500],
    ];
    const requests: [string, string, RequestInit][] = [
      ["counters", `/v1/clients/${id}/counters?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z`, authed(token)],
      ["clients", "/v1/clients", authed(token)],
      ["live", `/v1/clients/${id}/live`, authed(token, { headers: { upgrade: "websocket" } })],
    ];
    const answers: string[] = [];
    for (const [what, error] of failures) {
      // Every call to a client's object fails with `error`, as the runtime's stub would throw it.
      const failing = withMethods(env.CLIENT_COUNTER, {
        get: () => new Proxy({}, { get: (_t, method) => (method === "then" ? undefined : () => Promise.reject(error)) }) as DurableObjectStub<ClientCounter>,
      } as Partial<DurableObjectNamespace<ClientCounter>>);
      for (const [route, path, init] of requests) {
        const res = await linesOf("error", () => withEnv({ CLIENT_COUNTER: failing }, path, init));
        const code = (res.body as { error: { code: string } }).error.code;
        answers.push(`${what} ${route}: ${res.status} ${code} ${res.headers.get("retry-after")}`);
      }
    }
    expect(answers).toEqual(
      failures.flatMap(([what, , status]) => requests.map(([route]) => `${what} ${route}: ${status === 503 ? "503 storage_unavailable 1" : "500 internal null"}`)),
    );
  });

  it("says one thing per field: the first of its problems", async () => {
    const token = await signIn("admin");
    const res = await call("/v1/admin/clients", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ id: unique("one-issue"), name: "One issue", currency: "bitcoin", timezone: 7 }),
    });
    expect(res.status).toBe(400);
    const { details } = ((await res.json()) as { error: { details: { path: string }[] } }).error;
    expect(details.map((d) => d.path).sort()).toEqual(["currency", "timezone"]);
    const run = await call("/v1/billing/garbage/run", { method: "POST", headers: { authorization: `Bearer ${token}` } });
    expect(((await run.json()) as { error: { details: unknown[] } }).error.details).toHaveLength(1);
  });

  it("quotes the caller's input in a message only so far", async () => {
    const long = "a".repeat(5_000);
    const res = await call(`/v1/clients/${long}/counters?from=2026-11-20T00:00:00Z&to=2026-11-20T01:00:00Z`, { headers: { authorization: `Bearer ${await signIn("admin")}` } });
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect([res.status, error.code]).toEqual([404, "client_not_found"]);
    expect(error.message).toMatch(/^no client a+…$/);
    expect(error.message).toHaveLength(300);
  });
});

describe("edge hardening", () => {
  it("sends secure headers and a request id on API responses", async () => {
    const res = await call("/v1/openapi.json");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBe("SAMEORIGIN");
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("limits request bodies on non-ingest routes to 64 KiB", async () => {
    const res = await postJson("/v1/auth/login", { email: "a@example.com", password: "x".repeat(70_000) });
    expect(res.status).toBe(413);
  });

  describe("sign-in lockout", () => {
    const PASSWORD = "the-right-password";
    /**
     * Sign-in attempts from one address (each test its own, so their failures do not add up), to the
     * Worker as deployed or with `overrides` in its bindings.
     */
    const attempts = (ip: string, overrides?: Partial<Env>) => async (email: string, password: string, device_token?: string) =>
      call(
        "/v1/auth/login",
        {
          method: "POST",
          headers: { "content-type": "application/json", "cf-connecting-ip": ip },
          body: JSON.stringify({ email, password, device_token }),
        },
        overrides,
      );
    const deviceTokenOf = async (res: Response) => ((await res.json()) as { device_token: string }).device_token;
    const userWithPassword = async () => {
      const email = `${unique("lockout")}@example.com`;
      await db().insert(users).values({ email, passwordHash: await hashPassword(PASSWORD), role: "viewer", createdAt: Date.now() });
      return email;
    };

    it("locks an account after 10 failures in a minute with 429 and Retry-After, even for the right password", async () => {
      const login = attempts("198.51.100.1");
      const email = await userWithPassword();
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) {
        // However the email is typed, it is one account's failures.
        const res = await login(i % 2 === 0 ? email : email.toUpperCase(), `guess-${i}`);
        statuses.push(res.status);
        if (res.status === 429) expect(res.headers.get("retry-after")).toBe("60");
      }
      expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
      expect(statuses[10]).toBe(429);
      const right = await login(email, PASSWORD);
      expect(right.status).toBe(429);
      expect(((await right.json()) as { error: { code: string } }).error.code).toBe("too_many_attempts");
      expect((await attempts("198.51.100.2")(email, PASSWORD)).status).toBe(429);

      // The attempt that locked the account is in the audit log, by its address; the ones after are not.
      const audit = await call(`/v1/admin/audit?action=auth.locked&target=${encodeURIComponent(email)}`, authed(await signIn("admin")));
      const { entries } = (await audit.json()) as { entries: { actor: string; details: { lock: string; until: number } }[] };
      expect(entries.map((e) => [e.actor, e.details.lock])).toEqual([["address:198.51.100.1", "account"]]);
      expect(entries[0]!.details.until).toBeGreaterThan(Date.now() + 50_000);
    });

    it("never counts a successful sign-in, and a success clears the account's failures", async () => {
      const login = attempts("198.51.100.3");
      const email = await userWithPassword();
      // More sign-ins from one address than its limit of failures: each success took its attempt back.
      for (let i = 0; i < 51; i++) expect((await login(email, PASSWORD)).status).toBe(200);
      const statuses: number[] = [];
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 9; i++) statuses.push((await login(email, `guess-${i}`)).status);
        statuses.push((await login(email, PASSWORD)).status);
      }
      expect(statuses).toEqual([...Array(9).fill(401), 200, ...Array(9).fill(401), 200]);
    });

    it("checks at most 10 passwords of a burst of parallel guesses, and refuses the right one after them", async () => {
      const login = attempts("198.51.100.6");
      const email = await userWithPassword();
      // All wrong: a right one among them, counted early by the race, would succeed and clear the
      // account's failures (as the owner's sign-in does), and the guesses after it count afresh.
      const guesses = Array.from({ length: 30 }, (_, i) => `guess-${i}`);
      const statuses = await Promise.all(guesses.map(async (g) => (await login(email, g)).status));
      expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(20);
      expect((await login(email, PASSWORD)).status).toBe(429);
    });

    it("lets a device that signed in before through while strangers have locked the account, and locks it only by its own failures", async () => {
      const email = await userWithPassword();
      const home = attempts("198.51.100.7");
      const device = await deviceTokenOf(await home(email, PASSWORD));
      const stranger = attempts("198.51.100.8");
      for (let i = 0; i < 11; i++) await stranger(email, `guess-${i}`);
      expect((await stranger(email, PASSWORD)).status).toBe(429);

      const again = await home(email, PASSWORD, device);
      expect(again.status).toBe(200);
      expect(await deviceTokenOf(again)).toBe(device);
      // Its success did not unlock the account for strangers.
      expect((await attempts("198.51.100.9")(email, PASSWORD)).status).toBe(429);

      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await home(email, `typo-${i}`, device)).status);
      expect(statuses).toEqual([...Array(10).fill(401), 429]);
      expect((await home(email, PASSWORD, device)).status).toBe(429);
      const audit = await call(`/v1/admin/audit?action=auth.locked&target=${encodeURIComponent(email)}`, authed(await signIn("admin")));
      const { entries } = (await audit.json()) as { entries: { actor: string; details: { lock: string } }[] };
      expect(entries.map((e) => [e.actor, e.details.lock])).toEqual([
        ["address:198.51.100.7", "device"],
        ["address:198.51.100.8", "account"],
      ]);
    });

    it("treats device tokens from before the account's password reset as strangers', and the reset hands the changer a fresh one", async () => {
      const email = await userWithPassword();
      const login = attempts("198.51.100.12");
      const before = await deviceTokenOf(await login(email, PASSWORD));
      const session = ((await (await login(email, PASSWORD, before)).json()) as { token: string }).token;
      const changed = await postJson("/v1/auth/password", { current_password: PASSWORD, new_password: "a different passphrase" }, session);
      const fresh = await deviceTokenOf(changed);
      for (let i = 0; i < 11; i++) await attempts("198.51.100.13")(email, `guess-${i}`);
      expect((await login(email, "a different passphrase", before)).status).toBe(429);
      expect((await login(email, "a different passphrase", fresh)).status).toBe(200);
    });

    it("treats a device token of another account, or a forged one, as a stranger's", async () => {
      const email = await userWithPassword();
      const other = await userWithPassword();
      const login = attempts("198.51.100.10");
      const othersDevice = await deviceTokenOf(await login(other, PASSWORD));
      const ownDevice = await deviceTokenOf(await login(email, PASSWORD));
      const [id] = othersDevice.split(".");
      const signed = ownDevice.slice(0, ownDevice.lastIndexOf(".") + 1);
      const mac = ownDevice.slice(signed.length);
      // Its own token's MAC cut to its first byte, or with its last byte changed: the whole MAC is compared.
      const truncated = `${signed}${mac.slice(0, 2)}`;
      const lastByteChanged = `${signed}${mac.slice(0, -2)}${mac.endsWith("00") ? "01" : "00"}`;
      for (let i = 0; i < 11; i++) await attempts("198.51.100.11")(email, `guess-${i}`);
      for (const token of [othersDevice, `${id}.${"0".repeat(64)}`, "not-a-token", truncated, lastByteChanged]) {
        const res = await login(email, PASSWORD, token);
        expect([token, res.status]).toEqual([token, 429]);
      }
    });

    it("trusts a device token for 90 days", async () => {
      const email = await userWithPassword();
      const home = attempts("198.51.100.14");
      const device = await deviceTokenOf(await home(email, PASSWORD));
      for (const [days, ip, status] of [[89, "198.51.100.15", 200], [90, "198.51.100.16", 429]] as const) {
        await withClockAhead(days * DAY_MS, async () => {
          for (let i = 0; i < 11; i++) await attempts(ip)(email, `guess-${i}`);
          expect([days, (await home(email, PASSWORD, device)).status]).toEqual([days, status]);
        });
      }
    });

    it("trusts a device token of SESSION_SECRET_PREVIOUS while it is set, and hands the device back re-signed with the current key", async () => {
      const email = await userWithPassword();
      const device = await deviceTokenOf(await attempts("198.51.100.18")(email, PASSWORD));
      for (let i = 0; i < 11; i++) await attempts("198.51.100.19")(email, `guess-${i}`);
      const rotating = attempts("198.51.100.18", { SESSION_SECRET: NEW_SESSION_SECRET, SESSION_SECRET_PREVIOUS: env.SESSION_SECRET });
      const rotated = attempts("198.51.100.18", { SESSION_SECRET: NEW_SESSION_SECRET });

      const during = await rotating(email, PASSWORD, device);
      expect(during.status).toBe(200);
      const resigned = await deviceTokenOf(during);
      expect(resigned).not.toBe(device);
      // The same device, as old as it was: its id (its failures' bucket) and its issue time.
      expect(resigned.split(".").slice(0, 2)).toEqual(device.split(".").slice(0, 2));
      // The current key alone trusts it once the previous one is deleted; the old token is a stranger's then.
      expect((await rotated(email, PASSWORD, resigned)).status).toBe(200);
      expect((await rotated(email, PASSWORD, device)).status).toBe(429);
    });

    it("lets a locked account in once its lock has run out, counting failures afresh in a new window", async () => {
      const login = attempts("198.51.100.17");
      const email = await userWithPassword();
      for (let i = 0; i < 11; i++) await login(email, `guess-${i}`);
      expect((await login(email, PASSWORD)).status).toBe(429);
      // Trying again while locked does not extend the lock.
      await withClockAhead(30_000, async () => expect((await login(email, PASSWORD)).status).toBe(429));
      await withClockAhead(61_000, async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 11; i++) statuses.push((await login(email, `again-${i}`)).status);
        expect(statuses).toEqual([...Array(10).fill(401), 429]);
      });
    });

    it("locks an address after 50 failures in a minute, whichever accounts it tries", async () => {
      const login = attempts("198.51.100.4");
      const email = await userWithPassword();
      const statuses: number[] = [];
      for (let i = 0; i < 51; i++) statuses.push((await login(`${unique("spray")}@example.com`, PASSWORD)).status);
      expect(statuses.slice(0, 50).every((s) => s === 401)).toBe(true);
      expect(statuses[50]).toBe(429);
      expect((await login(email, PASSWORD)).status).toBe(429);
      expect((await attempts("198.51.100.5")(email, PASSWORD)).status).toBe(200);
    });

    it("counts an IPv6 caller by its /64, whose interface ids it picks at will", async () => {
      const email = await userWithPassword();
      const statuses: number[] = [];
      for (let i = 1; i <= 51; i++) statuses.push((await attempts(`2001:db8:77:1::${i.toString(16)}`)(`${unique("spray6")}@example.com`, PASSWORD)).status);
      expect(statuses.slice(0, 50).every((s) => s === 401)).toBe(true);
      expect(statuses[50]).toBe(429);
      expect((await attempts("2001:DB8:77:1:ffff:ffff:ffff:ffff")(email, PASSWORD)).status).toBe(429);
      expect((await attempts("2001:db8:77:2::1")(email, PASSWORD)).status).toBe(200);
    });

    it("keys an address by its network: an IPv6 /64 however written, an IPv4 address alone, mapped or not", () => {
      expect(callerNetwork("2001:db8:77:1::1")).toBe("2001:db8:77:1::/64");
      expect(callerNetwork("2001:0DB8:0077:0001:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:77:1::/64");
      expect(callerNetwork("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
      expect(callerNetwork("::1")).toBe("0:0:0:0::/64");
      expect(callerNetwork("::ffff:198.51.100.7")).toBe("198.51.100.7");
      expect(callerNetwork("198.51.100.7")).toBe("198.51.100.7");
      expect(callerNetwork("64:ff9b::198.51.100.7")).toBe("64:ff9b:0:0::/64");
      for (const odd of ["local", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "::ffff:300.1.1.1"]) expect(callerNetwork(odd)).toBe(odd);
    });
  });

  it("answers 405 with Allow for a served path under another method, 404 for a path it does not serve", async () => {
    const put = await call("/v1/webhooks/whatsapp", { method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD, POST");
    expect(((await put.json()) as { error: { code: string } }).error.code).toBe("method_not_allowed");
    const del = await call("/v1/admin/clients/acme", { method: "DELETE", headers: { authorization: `Bearer ${await signIn("admin")}` } });
    expect(del.status).toBe(405);
    expect(del.headers.get("allow")).toBe("PATCH");
    const file = await call("/v1/files/billing/date=2026-11-20/billing.csv", { method: "POST" });
    expect([file.status, file.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    // A parameter is one path segment: a longer path is not the route's.
    const deeper = await call("/v1/admin/clients/acme/extra", { method: "DELETE", headers: { authorization: `Bearer ${await signIn("admin")}` } });
    expect([deeper.status, deeper.headers.get("allow")]).toEqual([404, null]);
    // Middleware mounted at a path (no-store on /health) serves no method there.
    const health = await call("/health", { method: "PUT" });
    expect([health.status, health.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    const missing = await call("/v1/nothing-here", { method: "PUT" });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("allow")).toBeNull();
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not_found");
    // Routes are strict about a trailing slash, and so is the 405: GET /health/ is not served.
    const slash = await call("/health/");
    expect([slash.status, slash.headers.get("allow")]).toEqual([404, null]);
  });

  it("reads a JSON route's body as JSON when declared so, as text/plain (fetch's default) or untyped; 415 for forms; {} when empty", async () => {
    const token = await signIn("admin");
    const create = (type: string | null, body: string) =>
      call("/v1/admin/clients", { method: "POST", headers: { authorization: `Bearer ${token}`, ...(type === null ? {} : { "content-type": type }) }, body });
    const body = () => JSON.stringify({ id: unique("typed"), name: "Typed" });
    for (const type of ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await create(type, body());
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unsupported_media_type");
    }
    for (const type of ["application/json; charset=utf-8", "text/plain;charset=UTF-8", "application/merge-patch+json"]) expect((await create(type, body())).status).toBe(201);
    const untyped = await call("/v1/admin/clients", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: new Blob([body()]) });
    expect(untyped.status).toBe(201);
    const broken = await create("application/json", "{ not json");
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toBe("malformed_json");
    for (const headers of [{}, { "content-type": "application/json" }] as Record<string, string>[]) {
      const bodiless = await call("/v1/live/ticket", { method: "POST", headers: { authorization: `Bearer ${token}`, ...headers } });
      expect(bodiless.status).toBe(200);
    }
  });

  it("answers unknown errors without internals", async () => {
    const { id } = await createClient();
    const res = await withEnv({ CLIENT_COUNTER: {} as Env["CLIENT_COUNTER"] }, `/v1/clients/${id}/counters?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z`, {
      headers: { authorization: `Bearer ${await signIn("admin")}` },
    });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "internal", message: "internal error" } });
  });

  it("answers 503 (retry) when the session store does not answer", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ sub: "1", jti: "j", iat: now, exp: now + 60 }, env.SESSION_SECRET, "HS256");
    const res = await withEnv({ DB: {} as D1Database }, "/v1/me", { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("session_store_unavailable");
  });

  it("answers 503 (retry), not 500, when D1 does not answer on either ingest path or a live upgrade", async () => {
    const { id, phones } = await createClient();
    const noDb = { DB: {} as D1Database };
    const payload = JSON.stringify(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("d1")}`, status: "sent", timestamp: Math.floor(Date.now() / 1000) })] }]));
    const webhookRes = await withEnv(noDb, "/v1/webhooks/whatsapp", {
      method: "POST",
      headers: { "content-type": "application/json", "x-hub-signature-256": await metaSignature(payload) },
      body: payload,
    });
    const key = `zk_${unique("unknown-key")}`;
    const event = { event_id: unique("e"), message_id: unique("m"), client_id: id, status: "sent", occurred_at: Date.now() };
    const ingestRes = await withEnv(noDb, "/v1/ingest/events", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify([event]) });
    const token = await signIn("admin");
    const liveRes = await withEnv(noDb, "/v1/live", { headers: { upgrade: "websocket", authorization: `Bearer ${token}` } });
    for (const res of [webhookRes, ingestRes, liveRes]) {
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([503, expect.stringMatching(/_unavailable$/)]);
    }
    expect(ingestRes.headers.get("retry-after")).not.toBeNull();
  });

  it("answers 503 (retry), not 500, when D1 is locked for writes, said by the error or by its cause", async () => {
    const lockedError = () => new Error("D1_ERROR: database is locked: SQLITE_BUSY");
    // As a driver that wraps D1's error (drizzle's "Failed query") would throw it.
    for (const error of [lockedError, () => new Error("Failed query: insert into login_failures", { cause: lockedError() })]) {
      const busy = () => Promise.reject(error());
      // The real D1, except that every write fails as a locked database's does (reads go through).
      const locked = withMethods(env.DB, {
        batch: busy,
        prepare: (query: string) => {
          const statement = env.DB.prepare(query);
          if (!/^\s*(INSERT|UPDATE|DELETE)/i.test(query)) return statement;
          const failing = withMethods(statement, { run: busy, all: busy, first: busy, raw: busy });
          return withMethods(failing, { bind: () => failing });
        },
      });
      const res = await withEnv({ DB: locked }, "/v1/auth/login", {
        method: "POST",
        headers: { "content-type": "application/json", origin: BASE },
        body: JSON.stringify({ email: "admin@example.com", password: "whatever it is" }),
      });
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code, res.headers.get("retry-after")]).toEqual([503, "storage_unavailable", "1"]);
    }
  });
});

describe("pages of another origin", () => {
  const cookieOf = async () => {
    const email = `${unique("csrf")}@example.com`;
    await db().insert(users).values({ email, passwordHash: await hashPassword("csrf-password"), role: "admin", createdAt: Date.now() });
    const res = await postJson("/v1/auth/login", { email, password: "csrf-password" });
    return res.headers.get("set-cookie")!.split(";")[0]!;
  };
  /** A form post as a browser sends one from `origin`: the cookie rides along, the body is text/plain JSON. */
  const formPost = (path: string, cookie: string | null, origin: string, body: unknown) =>
    call(path, { method: "POST", headers: { ...(cookie ? { cookie } : {}), origin, "content-type": "text/plain" }, body: JSON.stringify(body) });
  const newUser = () => ({ email: `${unique("made")}@example.com`, password: "a long password", role: "admin" });

  it("may not act with the session cookie (CSRF), though the dashboard's own pages and bearer callers may", async () => {
    const cookie = await cookieOf();
    const foreign = await formPost("/v1/admin/users", cookie, "http://localhost:8795", newUser());
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe("forbidden_origin");
    expect((await formPost("/v1/admin/users", cookie, new URL(BASE).origin, newUser())).status).toBe(201);
    const bearer = await call("/v1/admin/users", { method: "POST", headers: { authorization: `Bearer ${await signIn("admin")}`, origin: "http://localhost:8795" }, body: JSON.stringify(newUser()) });
    expect(bearer.status).toBe(201);
    // Another kind of Authorization does not stand in for a bearer token: the cookie still acts.
    const basic = await call("/v1/admin/users", { method: "POST", headers: { cookie, origin: "http://localhost:8795", authorization: "Basic Zm9vOmJhcg==" }, body: JSON.stringify(newUser()) });
    expect(basic.status).toBe(403);
    // Without an Origin, Sec-Fetch-Site still tells another site's page from curl holding the cookie.
    const post = (headers: Record<string, string>) =>
      call("/v1/admin/users", { method: "POST", headers: { cookie, "content-type": "application/json", ...headers }, body: JSON.stringify(newUser()) });
    for (const site of ["cross-site", "same-site"]) expect((await post({ "sec-fetch-site": site })).status).toBe(403);
    expect((await post({ "sec-fetch-site": "same-origin" })).status).toBe(201);
    expect((await post({})).status).toBe(201);
    // Reading is not acting: a foreign page cannot read the answer anyway (no CORS grant).
    expect((await call("/v1/me", { headers: { cookie, origin: "http://localhost:8795" } })).status).toBe(200);
  });

  it("may not sign the browser in (login CSRF) or out", async () => {
    const res = await formPost("/v1/auth/login", null, "http://localhost:8795", { email: "admin@example.com", password: "whatever-it-is" });
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toBeNull();
    // The origin is refused before the body is read.
    expect((await formPost("/v1/auth/login", null, "http://localhost:8795", { email: "not an email" })).status).toBe(403);
    const cookie = await cookieOf();
    expect((await formPost("/v1/auth/logout", cookie, "http://localhost:8795", {})).status).toBe(403);
    expect((await call("/v1/me", { headers: { cookie } })).status).toBe(200);
  });
});

describe("caching", () => {
  it("lets no cache keep API answers: a sign-in's token, a viewer's data", async () => {
    const { id } = await createClient();
    const token = await signIn("admin");
    for (const res of [await postJson("/v1/auth/login", { email: "nobody@example.com", password: "whatever-it-is" }), await call("/v1/me", authed(token)), await call(`/v1/clients/${id}`, authed(token))]) {
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
  });
});

describe("answers given before any route", () => {
  const dashboard = "https://zapmeter-dashboard.pages.dev";

  it("reach a dashboard on another origin and no cache: a 413 for a body declared too large", async () => {
    const body = JSON.stringify({ padding: "x".repeat(70 * 1024) });
    const res = await withEnv({ DASHBOARD_ORIGIN: dashboard }, "/v1/live/ticket", authed(await signIn("admin"), {
      method: "POST",
      headers: { origin: dashboard, "content-type": "application/json", "content-length": String(body.length) },
      body,
    }));
    expect(res.status).toBe(413);
    // Without the grant, the dashboard's fetch would see a network error, not `payload_too_large`.
    expect([res.headers.get("access-control-allow-origin"), res.headers.get("cache-control")]).toEqual([dashboard, "no-store"]);
  });

  it("carry the API's security and cache headers: the production guard's 503", async () => {
    const res = await withEnv({ ENVIRONMENT: "production" }, "/v1/me");
    expect(res.status).toBe(503);
    expect([res.headers.get("content-security-policy"), res.headers.get("x-content-type-options"), res.headers.get("cache-control")]).toEqual([
      "default-src 'none'; frame-ancestors 'none'",
      "nosniff",
      "no-store",
    ]);
  });
});

describe("HEAD", () => {
  const audited = async (action: string, target: string) =>
    (await env.DB.prepare("SELECT count(*) AS n FROM audit_log WHERE action = ? AND target LIKE ?").bind(action, target).first<{ n: number }>())!.n;

  it("of a report or a billing download answers its headers and records no export or download", async () => {
    const day = "2026-11-13";
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`))]);
    await runDay(day);
    const token = await signIn("admin");
    const report = await call(`/v1/clients/${id}/report?from=${day}T00:00:00Z&to=${day}T23:59:59Z`, authed(token, { method: "HEAD" }));
    expect([report.status, report.headers.get("content-disposition")]).toEqual([200, expect.stringContaining(`zapmeter-${id}-`)]);
    expect((await call(`/v1/billing/${day}/download?format=csv`, authed(token, { method: "HEAD" }))).status).toBe(200);
    expect([await audited("report.export", id), await audited("billing.download", `billing/date=${day}/%`)]).toEqual([0, 0]);
  });
});

describe("sessions", () => {
  it("rotates a cookie session past half its life and revokes the old one after the rotation's grace", async () => {
    const email = `${unique("rot")}@example.com`;
    const [u] = await db().insert(users).values({ email, passwordHash: await hashPassword("whatever-long"), role: "viewer", createdAt: Date.now() }).returning();
    const now = Math.floor(Date.now() / 1000);
    const old = await sign({ sub: String(u!.id), jti: unique("jti"), iat: now - 7 * 3600, exp: now + 3600 }, env.SESSION_SECRET, "HS256");
    const res = await call("/v1/me", { headers: { cookie: `zm_session=${old}` } });
    expect(res.status).toBe(200);
    const fresh = res.headers.get("set-cookie")!.match(/zm_session=([^;]+)/)![1]!;
    expect(fresh).not.toBe(old);
    expect((await call("/v1/me", { headers: { cookie: `zm_session=${fresh}` } })).status).toBe(200);
    const late = await withClockAhead(ROTATED_SESSION_GRACE_MS, () => call("/v1/me", { headers: { cookie: `zm_session=${old}` } }));
    expect(late.status).toBe(401);
  });

  it("never rotates a bearer session: the caller keeps the token it holds until it ends", async () => {
    const email = `${unique("rot")}@example.com`;
    const [u] = await db().insert(users).values({ email, passwordHash: await hashPassword("whatever-long"), role: "viewer", createdAt: Date.now() }).returning();
    const now = Math.floor(Date.now() / 1000);
    const old = await sign({ sub: String(u!.id), jti: unique("jti"), iat: now - 7 * 3600, exp: now + 3600 }, env.SESSION_SECRET, "HS256");
    for (let i = 0; i < 2; i++) {
      const res = await call("/v1/me", authed(old));
      expect([res.status, res.headers.get("set-cookie")]).toEqual([200, null]);
    }
  });
});

describe("logs", () => {
  it("never contain recipient numbers, even when input is rejected", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
    }
    const { phones } = await createClient();
    const recipient = "5511912345678";
    await postWebhook(webhook([{ phoneNumberId: phones[0]!, statuses: [statusObject({ id: `wamid.${unique("p")}`, status: "sent", timestamp: 1_763_640_000, recipient })] }]));
    await postWebhook(webhook([{ phoneNumberId: unique("nobody"), statuses: [statusObject({ id: `wamid.${unique("p")}`, status: "sent", timestamp: 1_763_640_000, recipient })] }]));
    await postWebhook(JSON.stringify({ object: "whatsapp_business_account", entry: [{ changes: [{ field: "messages", value: { statuses: [{ recipient_id: recipient }] } }] }] }));
    await postWebhook(JSON.stringify({ object: "whatsapp_business_account", entry: { statuses: [{ recipient_id: recipient }] } }));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join("\n")).not.toContain(recipient);
  });
});
