import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { accessLogSampleRate } from "../../workers/security.ts";
import { users } from "../../schema/db.ts";
import { hashPassword } from "../../workers/auth/password.ts";
import { issueSession } from "../../workers/auth/session.ts";
import { authed, call, db, unique, withEnv, withMethods } from "./helpers.ts";

/** The access-log lines written while `run` ran. */
async function linesDuring(run: () => Promise<unknown>): Promise<{ path: string; status: number }[]> {
  const log = vi.spyOn(console, "info");
  await run();
  const lines = log.mock.calls.map((args) => String(args[0])).filter((l) => l.includes('"event":"request"'));
  log.mockRestore();
  return lines.map((l) => JSON.parse(l) as { path: string; status: number });
}

describe("access log", () => {
  afterEach(() => vi.restoreAllMocks());

  it("logs every failed request, with its status and path only", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const lines = await linesDuring(() => call("/v1/clients?secret=x"));
    expect(lines).toEqual([expect.objectContaining({ path: "/v1/clients", status: 401 })]);
  });

  it("logs a successful request only when it falls in the sample", async () => {
    expect(accessLogSampleRate(env)).toBe(0.01);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(await linesDuring(() => call("/health"))).toEqual([]);
    vi.spyOn(Math, "random").mockReturnValue(0.001);
    expect(await linesDuring(() => call("/health"))).toEqual([expect.objectContaining({ path: "/health", status: 200 })]);
  });

  it("reads the sample rate as a share in [0, 1], and logs everything when it is not one", () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const rate = (v: string) => accessLogSampleRate({ ...env, ACCESS_LOG_SAMPLE_RATE: v });
    expect([rate("0"), rate("0.25"), rate("1")]).toEqual([0, 0.25, 1]);
    expect([rate(""), rate("lots"), rate("2"), rate("-1")]).toEqual([1, 1, 1, 1]);
  });

  it("says once per isolate that a sample rate it cannot read logs every request, naming the value", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const logged = () => linesDuring(() => withEnv({ ACCESS_LOG_SAMPLE_RATE: "1%" }, "/health"));
    // Outside the 1 % sample (0.5), and still logged, each time.
    expect([await logged(), await logged()]).toEqual([[expect.objectContaining({ path: "/health", status: 200 })], [expect.objectContaining({ path: "/health", status: 200 })]]);
    expect(errors.mock.calls.map((args) => JSON.parse(String(args[0])) as unknown)).toEqual([
      { level: "error", event: "access_log_sample_rate_invalid", value: "1%", expected: "a number from 0 to 1", using: 1 },
    ]);
  });
});

describe("the log line of a failed D1 statement", () => {
  afterEach(() => vi.restoreAllMocks());

  /** D1 whose statements matching `failing` reject as a lost connection does. */
  const d1Failing = (failing: RegExp): D1Database =>
    withMethods(env.DB, {
      prepare: (query: string) => {
        const statement = env.DB.prepare(query);
        if (!failing.test(query)) return statement;
        const lost = () => Promise.reject(new Error("D1_ERROR: Network connection lost."));
        return withMethods(statement, { bind: () => withMethods(statement, { run: lost, all: lost, raw: lost, first: lost }) });
      },
    });

  it("names the statement and D1's error, not the statement's values: a new password's hash, a typed email", async () => {
    const email = `${unique("leak")}@example.com`;
    const [u] = await db().insert(users).values({ email, passwordHash: await hashPassword("old password 123"), role: "viewer", createdAt: Date.now() }).returning();
    const { token } = await issueSession(env.SESSION_SECRET, u!.id);
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const changed = await withEnv({ DB: d1Failing(/update "users" set "password_hash"/) }, "/v1/auth/password", authed(token, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ current_password: "old password 123", new_password: "a brand new long passphrase 42" }),
    }));
    const typed = `${unique("typed")}@example.com`;
    const signedIn = await withEnv({ DB: d1Failing(/from "users" where "users"."email" = \?/) }, "/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: typed, password: "whatever it is" }),
    });
    expect([changed.status, signedIn.status]).toEqual([503, 503]);
    const lines = errors.mock.calls.map((args) => JSON.parse(String(args[0])) as { event: string; error?: { message: string; cause?: string } });
    const failed = lines.filter((l) => l.event === "storage_unavailable");
    expect(failed).toHaveLength(2);
    for (const l of failed) expect(l.error).toMatchObject({ message: expect.stringMatching(/^Failed query: /), cause: "Error: D1_ERROR: Network connection lost." });
    const logged = JSON.stringify(lines);
    expect(logged).not.toContain("pbkdf2-sha256$");
    expect(logged).not.toContain(email);
    expect(logged).not.toContain(typed);
  });
});
