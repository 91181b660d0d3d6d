import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signFileUrl } from "../../workers/files/signed-urls.ts";
import { authed, createClient, signIn, unique, withEnv, withMethods } from "./helpers.ts";
import { ingest, runDay, status } from "./billing-fixtures.ts";

// R2 not answering, as its Workers binding says it (the code at the end of the message): a retry can
// succeed, so the answer is 503, never 500 (workers/errors.ts).
const r2Error = () => Promise.reject(new Error("head: We encountered an internal error. Please try again. (10001)"));
const flakyR2 = withMethods(env.LAKE, { head: r2Error, get: r2Error });

describe("billing files and the lake while R2 does not answer", () => {
  it("answers a finance download link request 503 (retry), not 500", async () => {
    const day = "2026-08-03";
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`))]);
    await runDay(day);
    const finance = await signIn("finance");
    const res = await withEnv({ LAKE: flakyR2 }, `/v1/billing/${day}/download?format=csv`, authed(finance));
    expect(res.status).toBe(503);
  });

  it("answers a valid signed link 503 (retry), not 500", async () => {
    const day = "2026-08-04";
    await runDay(day);
    const { path } = await signFileUrl(env.FILE_SIGNING_SECRET, `billing/date=${day}/billing.csv`, Date.now());
    const res = await withEnv({ LAKE: flakyR2 }, path);
    expect(res.status).toBe(503);
  });

  it("answers 503 for each of R2's retryable errors (internal, unavailable, concurrent writes of one object), 500 for another", async () => {
    const day = "2026-08-06";
    await createClient();
    await runDay(day);
    const { path } = await signFileUrl(env.FILE_SIGNING_SECRET, `billing/date=${day}/billing.csv`, Date.now());
    const failingWith = (message: string) => withMethods(env.LAKE, { get: () => Promise.reject(new Error(message)) });
    const statuses: Record<string, number> = {};
    for (const code of ["10001", "10043", "10058", "10020"]) {
      statuses[code] = (await withEnv({ LAKE: failingWith(`get: R2 refused the call (${code})`) }, path)).status;
    }
    expect(statuses).toEqual({ "10001": 503, "10043": 503, "10058": 503, "10020": 500 });
  });

  it("answers a one-client reconcile whose lake read R2 refuses 503 (retry), not 500", async () => {
    const day = "2026-08-05";
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`))]);
    const lake = withMethods(env.LAKE, { list: () => Promise.reject(new Error("list: We encountered an internal error. Please try again. (10001)")), get: r2Error });
    const res = await withEnv({ LAKE: lake }, `/v1/billing/${day}/reconcile?client_id=${id}`, authed(await signIn("admin")));
    expect(res.status).toBe(503);
  });
});

describe("the report while R2 does not answer", () => {
  const flakyLake = withMethods(env.LAKE, { list: r2Error, get: r2Error, head: r2Error });
  for (const format of ["csv", "parquet"]) {
    it(`answers a ${format} report 503 before its headers go, not 200 with a body cut short, and records no export`, async () => {
      const { id } = await createClient();
      const res = await withEnv({ LAKE: flakyLake }, `/v1/clients/${id}/report?from=2026-11-18T00:00:00Z&to=2026-11-19T00:00:00Z&format=${format}`, authed(await signIn("admin")));
      expect([res.status, ((await res.json()) as { error: { code: string } }).error.code]).toEqual([503, "storage_unavailable"]);
      const exports = await env.DB.prepare("SELECT count(*) AS n FROM audit_log WHERE action = 'report.export' AND target = ?").bind(id).first<{ n: number }>();
      expect(exports!.n).toBe(0);
    });
  }
});
