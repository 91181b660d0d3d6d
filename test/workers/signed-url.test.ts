import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hmacSha256, toHex } from "../../workers/auth/crypto.ts";
import { signFileUrl, verifyFileUrl } from "../../workers/files/signed-urls.ts";
import { authed, call, createClient, signIn, unique, withEnv } from "./helpers.ts";
import { ingest, runDay, status } from "./billing-fixtures.ts";

const DAY = "2026-11-12";
const KEY = `billing/date=${DAY}/billing.csv`;

async function billedDay(): Promise<void> {
  const { id } = await createClient();
  await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${DAY}T12:00:00Z`))]);
  await runDay(DAY);
}

async function linkFor(token: string, format = "csv", revision?: number): Promise<{ url: URL; expires_at: number; revision: number }> {
  const res = await call(`/v1/billing/${DAY}/download?format=${format}${revision ? `&revision=${revision}` : ""}`, authed(token));
  expect(res.status).toBe(200);
  const body = (await res.json()) as { url: string; expires_at: number; revision: number };
  return { url: new URL(body.url), expires_at: body.expires_at, revision: body.revision };
}

const fetchPath = (url: URL | string, overrides?: Partial<Env>) => call(typeof url === "string" ? url : url.pathname + url.search, {}, overrides);

async function refused(url: URL | string, overrides?: Partial<Env>): Promise<string> {
  const res = await fetchPath(url, overrides);
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  expect([res.status, error.code]).toEqual([403, "invalid_link"]);
  return error.message;
}

describe("signed billing downloads", () => {
  it("finance gets an expiring link that streams the file without a session, and the download is audited", async () => {
    await billedDay();
    const finance = await signIn("finance");
    const before = Date.now();
    const { url, expires_at, revision } = await linkFor(finance);
    const archived = `billing/date=${DAY}/revision=${revision}/billing.csv`;
    expect(url.pathname).toBe(`/v1/files/${archived}`);
    expect(expires_at).toBeGreaterThan(before);
    expect(expires_at).toBeLessThanOrEqual(before + 16 * 60_000);
    const res = await fetchPath(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="billing-${DAY}-r${revision}.csv"`);
    expect(res.headers.get("cache-control")).toBe("private, no-store");
    expect(await res.text()).toBe(await (await env.LAKE.get(KEY))!.text());
    // Hex is hex in either case: a link that passed through something that upper-cases it still works.
    const upper = new URL(url);
    upper.searchParams.set("sig", url.searchParams.get("sig")!.toUpperCase());
    expect((await fetchPath(upper)).status).toBe(200);

    const parquet = await fetchPath((await linkFor(finance, "parquet")).url);
    expect(parquet.headers.get("content-type")).toBe("application/vnd.apache.parquet");
    expect(new TextDecoder().decode(new Uint8Array(await parquet.arrayBuffer()).slice(0, 4))).toBe("PAR1");

    const audited = await env.DB.prepare("SELECT actor, target FROM audit_log WHERE action = 'billing.download' AND target = ?").bind(archived).all();
    expect(audited.results.length).toBeGreaterThanOrEqual(1);
    expect(audited.results[0]!.actor as string).toMatch(/^finance-/);
  });

  it("keeps every revision's file: a link serves the revision it was issued for after a re-bill, and an earlier one can be asked for", async () => {
    const day = "2026-11-13";
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`))]);
    await runDay(day);
    const finance = await signIn("finance");
    const link = async (revision?: number) => call(`/v1/billing/${day}/download?format=csv${revision ? `&revision=${revision}` : ""}`, authed(finance));
    const first = (await (await link()).json()) as { url: string; revision: number };
    const firstCsv = await (await fetchPath(new URL(first.url))).text();

    // A late event re-bills the day: the link issued before still serves what it served.
    await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${day}T13:00:00Z`))]);
    await runDay(day);
    const second = (await (await link()).json()) as { url: string; revision: number };
    expect(second.revision).toBe(first.revision + 1);
    expect(await (await fetchPath(new URL(first.url))).text()).toBe(firstCsv);
    const secondCsv = await (await fetchPath(new URL(second.url))).text();
    expect(secondCsv).not.toBe(firstCsv);
    expect(secondCsv).toBe(await (await env.LAKE.get(`billing/date=${day}/billing.csv`))!.text());

    const asked = (await (await link(first.revision)).json()) as { url: string; revision: number };
    expect([asked.revision, await (await fetchPath(new URL(asked.url))).text()]).toEqual([first.revision, firstCsv]);
    const unknown = await link(second.revision + 5);
    expect([unknown.status, ((await unknown.json()) as { error: { code: string } }).error.code]).toEqual([404, "revision_not_found"]);
  });

  it("serves the current file of a day billed before each revision's file was archived, for that revision only", async () => {
    const day = "2026-11-11";
    const { id } = await createClient();
    await ingest([status(id, unique("wamid"), "delivered", Date.parse(`${day}T12:00:00Z`))]);
    const { revision } = await runDay(day);
    await env.LAKE.delete(`billing/date=${day}/revision=${revision}/billing.csv`);
    const finance = await signIn("finance");
    const res = await call(`/v1/billing/${day}/download?format=csv`, authed(finance));
    expect(res.status).toBe(200);
    const { url } = (await res.json()) as { url: string };
    expect(new URL(url).pathname).toBe(`/v1/files/billing/date=${day}/billing.csv`);
    expect(await (await fetchPath(new URL(url))).text()).toBe(await (await env.LAKE.get(`billing/date=${day}/billing.csv`))!.text());
    const later = await call(`/v1/billing/${day}/download?format=csv&revision=${revision + 1}`, authed(finance));
    expect([later.status, ((await later.json()) as { error: { code: string } }).error.code]).toEqual([404, "revision_not_found"]);
  });

  it("refuses a changed key, a changed expiry, a wrong or missing signature and an expired link", async () => {
    await billedDay();
    const { url } = await linkFor(await signIn("finance"));
    const exp = url.searchParams.get("exp")!;
    const sig = url.searchParams.get("sig")!;

    expect(await refused(`/v1/files/billing/date=${DAY}/billing.parquet?exp=${exp}&sig=${sig}`)).toMatch(/signature/);
    expect(await refused(`/v1/files/${KEY}?exp=${Number(exp) + 3600}&sig=${sig}`)).toMatch(/signature/);
    const flipped = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
    expect(await refused(`/v1/files/${KEY}?exp=${exp}&sig=${flipped}`)).toMatch(/signature/);
    expect(await refused(`/v1/files/${KEY}?exp=${exp}`)).toMatch(/exp or sig/);
    expect(await refused(`/v1/files/${KEY}?exp=soon&sig=${sig}`)).toMatch(/exp or sig/);

    const forged = await signFileUrl("another-secret", KEY, Date.now());
    expect(await refused(forged.path)).toMatch(/signature/);
    const old = await signFileUrl(env.FILE_SIGNING_SECRET, KEY, Date.now() - 3_600_000, 60);
    expect(await refused(old.path)).toMatch(/expired/);
  });

  it("a link works up to the millisecond before its expiry, and from a signer whose clock is up to a minute ahead", async () => {
    const secret = env.FILE_SIGNING_SECRET;
    const keys = { current: secret };
    const now = Date.parse("2026-11-20T12:00:00Z");
    const credentials = async (signedAt: number) => {
      const url = new URL((await signFileUrl(secret, KEY, signedAt)).path, "https://zapmeter.test");
      return [Number(url.searchParams.get("exp")), url.searchParams.get("sig")!] as const;
    };
    const [exp, sig] = await credentials(now);
    expect(await verifyFileUrl(keys, KEY, exp, sig, exp * 1000 - 1)).toBe("ok");
    expect(await verifyFileUrl(keys, KEY, exp, sig, exp * 1000)).toBe("expired");
    // Workers' clocks differ a little: a link signed a minute "in the future" is still one we issue.
    expect(await verifyFileUrl(keys, KEY, ...(await credentials(now + 60_000)), now)).toBe("ok");
    expect(await verifyFileUrl(keys, KEY, ...(await credentials(now + 61_000)), now)).toBe("not_issued");
  });

  it("serves links of the previous key while FILE_SIGNING_SECRET_PREVIOUS is set, and signs new ones with the current key", async () => {
    await billedDay();
    const finance = await signIn("finance");
    const before = (await linkFor(finance)).url;
    const NEW_SECRET = "the-new-file-secret-0123456789";
    const rotating = { FILE_SIGNING_SECRET: NEW_SECRET, FILE_SIGNING_SECRET_PREVIOUS: env.FILE_SIGNING_SECRET };
    const rotated = { FILE_SIGNING_SECRET: NEW_SECRET };
    expect((await fetchPath(before, rotating)).status).toBe(200);
    expect(await refused(before, rotated)).toMatch(/signature/);
    // An empty previous secret (`wrangler secret put` given nothing) is no key: WebCrypto refuses an empty HMAC key.
    expect(await refused(before, { ...rotated, FILE_SIGNING_SECRET_PREVIOUS: "" })).toMatch(/signature/);
    expect(await refused((await signFileUrl("a-third-file-secret-0123456789", KEY, Date.now())).path, rotating)).toMatch(/signature/);

    const during = await withEnv(rotating, `/v1/billing/${DAY}/download?format=csv`, authed(finance));
    expect((await fetchPath(new URL(((await during.json()) as { url: string }).url), rotated)).status).toBe(200);
  });

  it("refuses links no one issues, even signed with the secret: other prefixes, and longer lives", async () => {
    await billedDay();
    const signedBySecret = async (key: string, exp: number) => `/v1/files/${key}?exp=${exp}&sig=${toHex(await hmacSha256(env.FILE_SIGNING_SECRET, `${key}\n${exp}`))}`;
    const soon = Math.floor(Date.now() / 1000) + 600;
    await env.LAKE.put("lake/notifications/date=2026-11-18/client_id=x/part.parquet", "recipients");
    expect(await refused(await signedBySecret("lake/notifications/date=2026-11-18/client_id=x/part.parquet", soon))).toMatch(/no link is issued/);
    expect(await refused(await signedBySecret(KEY, Math.floor(Date.now() / 1000) + 7 * 86_400))).toMatch(/no link is issued/);
    expect((await fetchPath(await signedBySecret(KEY, soon))).status).toBe(200);
    for (const key of ["dlq/date=2026-11-18/x.json", "billing/../dlq/date=2026-11-18/x.json"]) {
      await expect(signFileUrl(env.FILE_SIGNING_SECRET, key, Date.now())).rejects.toThrow(/unusual key/);
    }
  });

  it("a valid link to a key that does not exist is 404; viewers cannot ask for links", async () => {
    const gone = await signFileUrl(env.FILE_SIGNING_SECRET, "billing/date=1999-01-01/billing.csv", Date.now());
    expect((await fetchPath(gone.path)).status).toBe(404);
    const viewer = await signIn("viewer");
    expect((await call(`/v1/billing/${DAY}/download?format=csv`, authed(viewer))).status).toBe(403);
    expect((await call(`/v1/billing/${DAY}/download?format=xlsx`, authed(await signIn("finance")))).status).toBe(400);
  });
});
