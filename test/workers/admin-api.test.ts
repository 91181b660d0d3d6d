import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished } from "vitest";
import { messageShard } from "../../durable-objects/client-shards.ts";
import { eventTableFor } from "../../durable-objects/client-counter-tables.ts";
import { INGEST_STATS_HEADERS, type ClientObjects } from "../../schema/api.ts";
import { minuteOf } from "../../schema/time.ts";
import { shardsForStorage } from "../../workers/client-counters.ts";
import { admin, authed, call, createClient, d1RefusingBatchesOf, gatedDb, ingestKey, postEvents, postJson, signIn, unique, withEnv, withMethods } from "./helpers.ts";

describe("admin: clients and phone numbers", () => {
  it("creates, lists and updates a client with its phone numbers", async () => {
    const token = await admin();
    const id = unique("acme");
    const created = await postJson("/v1/admin/clients", { id, name: "Acme", timezone: "America/Sao_Paulo", phone_number_ids: ["pn-a1", "pn-a2"].map((p) => `${p}-${id}`) }, token);
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({
      id,
      name: "Acme",
      timezone: "America/Sao_Paulo",
      currency: "BRL",
      shards: 1,
      active: true,
      phone_number_ids: [`pn-a1-${id}`, `pn-a2-${id}`],
    });
    // Keeping a number the client already has is no conflict with itself.
    const patched = await postJson(`/v1/admin/clients/${id}`, { name: "Acme SA", phone_number_ids: [`pn-a2-${id}`, `pn-a3-${id}`], active: false }, token, "PATCH");
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ name: "Acme SA", active: false, phone_number_ids: [`pn-a2-${id}`, `pn-a3-${id}`] });
    const other = await createClient();
    const list = (await (await call("/v1/admin/clients", authed(token))).json()) as { clients: { id: string; phone_number_ids: string[] }[] };
    expect(list.clients.find((c) => c.id === id)).toEqual({ id, name: "Acme SA", timezone: "America/Sao_Paulo", currency: "BRL", shards: 1, active: false, phone_number_ids: [`pn-a2-${id}`, `pn-a3-${id}`] });
    expect(list.clients.find((c) => c.id === other.id)?.phone_number_ids).toEqual(other.phones);
  });

  it("lists each client's numbers in the order its own answer gives them, whatever order they were sent in", async () => {
    const token = await admin();
    const id = unique("order");
    const phones = ["pn-c", "pn-a", "pn-b"].map((p) => `${p}-${id}`);
    const created = await postJson("/v1/admin/clients", { id, name: "Order", phone_number_ids: phones }, token);
    const own = ((await created.json()) as { phone_number_ids: string[] }).phone_number_ids;
    expect(own).toEqual([...phones].sort());
    const list = (await (await call("/v1/admin/clients", authed(token))).json()) as { clients: { id: string; phone_number_ids: string[] }[] };
    expect(list.clients.find((c) => c.id === id)?.phone_number_ids).toEqual(own);
  });

  it("changes only the fields a PATCH names, and refuses one that names none", async () => {
    const token = await admin();
    const id = unique("partial");
    const phones = [`pn-p1-${id}`];
    await postJson("/v1/admin/clients", { id, name: "Partial", timezone: "America/Sao_Paulo", currency: "USD", phone_number_ids: phones }, token);
    const renamed = await postJson(`/v1/admin/clients/${id}`, { name: "Partial SA" }, token, "PATCH");
    expect(await renamed.json()).toEqual({ id, name: "Partial SA", timezone: "America/Sao_Paulo", currency: "USD", shards: 1, active: true, phone_number_ids: phones });
    const paused = await postJson(`/v1/admin/clients/${id}`, { active: false }, token, "PATCH");
    expect(await paused.json()).toMatchObject({ name: "Partial SA", timezone: "America/Sao_Paulo", currency: "USD", active: false, phone_number_ids: phones });
    const empty = await postJson(`/v1/admin/clients/${id}`, {}, token, "PATCH");
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { error: { code: string } }).error.code).toBe("validation_failed");
  });

  it("refuses a duplicate id, a phone number of another client, a bad time zone and an unknown client", async () => {
    const token = await admin();
    const a = await createClient();
    const again = await postJson("/v1/admin/clients", { id: a.id, name: "again" }, token);
    expect([again.status, ((await again.json()) as { error: { code: string } }).error.code]).toEqual([409, "client_exists"]);
    // An id that differs only in case would share the client's lake folder on a case-insensitive disk.
    const shouted = await postJson("/v1/admin/clients", { id: a.id.toUpperCase(), name: "again" }, token);
    expect([shouted.status, await shouted.json()]).toEqual([409, { error: { code: "client_exists", message: `client ${a.id} already exists: ids must differ in more than case` } }]);
    const free = unique("pn");
    const taken = await postJson("/v1/admin/clients", { id: unique("b"), name: "B", phone_number_ids: [free, a.phones[0]] }, token);
    expect(taken.status).toBe(409);
    // Only the numbers another client holds, so the caller knows which to drop.
    expect(((await taken.json()) as { error: unknown }).error).toMatchObject({ code: "phone_number_taken", details: [a.phones[0]] });
    const badTz = await postJson("/v1/admin/clients", { id: unique("c"), name: "C", timezone: "Mars/Olympus" }, token);
    expect(badTz.status).toBe(400);
    expect(((await badTz.json()) as { error: { code: string; details: { path: string }[] } }).error).toMatchObject({
      code: "validation_failed",
      details: [{ path: "timezone" }],
    });
    const unknown = await postJson("/v1/admin/clients/nope-nope", { name: "x" }, token, "PATCH");
    expect([unknown.status, ((await unknown.json()) as { error: { code: string } }).error.code]).toEqual([404, "client_not_found"]);
    // A number listed twice is the caller's mistake, said as such (it was a 500 from D1's unique key).
    const twice = [unique("pn"), unique("pn")];
    for (const [path, body, method] of [
      ["/v1/admin/clients", { id: unique("d"), name: "D", phone_number_ids: [twice[0], twice[0]] }, "POST"],
      [`/v1/admin/clients/${a.id}`, { phone_number_ids: [twice[1], a.phones[0], twice[1]] }, "PATCH"],
    ] as const) {
      const res = await postJson(path, body, token, method);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { details: { path: string }[] } }).error.details).toEqual([expect.objectContaining({ path: "phone_number_ids" })]);
    }
  });

  it("answers the loser of two requests racing for one client id or one number with a 409, not a 500", async () => {
    const token = await admin();
    const id = unique("race");
    const pn = unique("pn");
    const racing = await Promise.all([
      postJson("/v1/admin/clients", { id, name: "first" }, token),
      postJson("/v1/admin/clients", { id, name: "second" }, token),
      postJson("/v1/admin/clients", { id: unique("r1"), name: "R1", phone_number_ids: [pn] }, token),
      postJson("/v1/admin/clients", { id: unique("r2"), name: "R2", phone_number_ids: [pn] }, token),
    ]);
    const answers = await Promise.all(racing.map(async (r) => (r.status === 201 ? "created" : `${r.status} ${((await r.json()) as { error: { code: string } }).error.code}`)));
    // Which check the loser meets depends on the interleaving: the route's own, or D1's key.
    expect(answers.slice(0, 2).sort()).toEqual([expect.stringMatching(/^409 (client_exists|concurrent_change)$/), "created"]);
    expect(answers.slice(2).sort()).toEqual([expect.stringMatching(/^409 (phone_number_taken|concurrent_change)$/), "created"]);
  });

  it("refuses with 409 client_exists an id that a racing request took in another case meanwhile, numbers and all", async () => {
    const token = await admin();
    const id = unique("case");
    const [lower, upper] = [unique("pn"), unique("pn")];
    // The lower-case id has passed the route's check and is held at its write; the upper-case one is created meanwhile.
    const held = gatedDb(/insert into "clients"/);
    const late = withEnv({ DB: held.DB }, "/v1/admin/clients", authed(token, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, name: "lower", phone_number_ids: [lower] }) }));
    await held.reached;
    expect((await postJson("/v1/admin/clients", { id: id.toUpperCase(), name: "upper", phone_number_ids: [upper] }, token)).status).toBe(201);
    held.release();
    const refused = await late;
    expect([refused.status, await refused.json()]).toEqual([409, { error: { code: "client_exists", message: `client ${id.toUpperCase()} already exists: ids must differ in more than case` } }]);
    const stored = await env.DB.prepare("SELECT c.id, p.phone_number_id AS phone FROM clients c LEFT JOIN phone_numbers p ON p.client_id = c.id WHERE lower(c.id) = lower(?)").bind(id).all<{ id: string; phone: string }>();
    expect(stored.results).toEqual([{ id: id.toUpperCase(), phone: upper }]);
  });

  it("stops routing events to a deactivated client, though this isolate had it cached", async () => {
    const token = await admin();
    const { id } = await createClient();
    const key = (await (await postJson("/v1/admin/api-keys", { scope: "ingest" }, token)).json()) as { key: string };
    const event = () => ({ event_id: unique("x"), message_id: unique("x"), client_id: id, status: "sent", occurred_at: Date.now(), recipient: "5511999999999" });
    expect(await (await postEvents([event()], key.key)).json()).toMatchObject({ accepted: 1 });
    await postJson(`/v1/admin/clients/${id}`, { active: false }, token, "PATCH");
    const res = await postEvents([event()], key.key);
    expect(((await res.json()) as { rejected: { code: string }[] }).rejected[0]!.code).toBe("unknown_client");
  });
});

describe("admin: a change made while this isolate looks the client up", () => {
  /** D1 whose reads of clients by id run at once but answer only once `gate` opens. */
  const heldClientReads = (gate: Promise<void>, reached: () => void): D1Database =>
    withMethods(env.DB, {
      prepare: (query: string) => {
        const statement = env.DB.prepare(query);
        if (!/from "clients" where "clients"."id" in/i.test(query)) return statement;
        return withMethods(statement, {
          bind: (...values: unknown[]) => {
            const bound = statement.bind(...values);
            const late = <T,>(p: Promise<T>) => p.then(async (v) => (reached(), await gate, v));
            return withMethods(bound, { all: () => late(bound.all()), raw: ((o?: unknown) => late(bound.raw(o as never))) as D1PreparedStatement["raw"] });
          },
        });
      },
    });

  it("is seen at once, though a lookup that read the client before the change answered after it", async () => {
    const token = await admin();
    const { id } = await createClient();
    const key = await ingestKey();
    const event = () => ({ event_id: unique("x"), message_id: unique("x"), client_id: id, status: "sent", occurred_at: Date.now(), recipient: "5511999999999" });
    let reached!: () => void;
    const atRead = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFlight = withEnv({ DB: heldClientReads(gate, reached) }, "/v1/ingest/events", authed(key, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify([event()]) }));
    await atRead;
    expect((await postJson(`/v1/admin/clients/${id}`, { active: false }, token, "PATCH")).status).toBe(200);
    release();
    expect((await inFlight).status).toBe(200);
    // Until 2026-12-06 the lookup put the active client back in this isolate's cache for 30 s.
    const after = await postEvents([event()], key);
    expect(await after.json()).toMatchObject({ accepted: 0, rejected: [{ code: "unknown_client" }] });
  });
});

describe("admin: two changes of one client's phone numbers at once", () => {
  it("records the release of every number the client gives up, one a concurrent change had just added too", async () => {
    const token = await admin();
    const [p1, p2, p3] = [unique("pn1"), unique("pn2"), unique("pn3")];
    const a = await createClient({ phones: [p1] });
    // The first change read the client's numbers ([p1]) and is held at its write.
    const held = gatedDb(/phone_number_releases/);
    const first = withEnv({ DB: held.DB }, `/v1/admin/clients/${a.id}`, authed(token, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ phone_number_ids: [p3] }) }));
    await held.reached;
    expect((await postJson(`/v1/admin/clients/${a.id}`, { phone_number_ids: [p1, p2] }, token, "PATCH")).status).toBe(200);
    held.release();
    expect(((await (await first).json()) as { phone_number_ids: string[] }).phone_number_ids).toEqual([p3]);
    // Without p2's release a Meta retry of its statuses would be counted again by its next owner.
    const releases = await env.DB.prepare("SELECT phone_number_id AS p FROM phone_number_releases WHERE client_id = ?").bind(a.id).all<{ p: string }>();
    expect(releases.results.map((r) => r.p).sort()).toEqual([p1, p2].sort());
  });
});

describe("admin: what a client, rate card or user may be given", () => {
  /** The 400's issues, as `path: message`. */
  async function refusal(res: Response): Promise<string[]> {
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { path: string; message: string }[] } };
    expect(body.error.code).toBe("validation_failed");
    return body.error.details.map((d) => `${d.path}: ${d.message}`);
  }

  it("refuses countries, currencies, zones, names and number ids that only look right, saying what to send", async () => {
    const token = await admin();
    const client = (body: Record<string, unknown>) => postJson("/v1/admin/clients", { id: unique("v"), name: "Valid", ...body }, token);
    const card = (body: Record<string, unknown>) => postJson("/v1/admin/rate-cards", { client_id: null, category: "utility", country: "BR", unit_price_micros: 1, currency: "BRL", ...body }, token, "PUT");
    // A rate card for UK would never meet the GB of a +44 number; ZZZ is no currency.
    expect(await refusal(await card({ country: "UK" }))).toEqual([expect.stringMatching(/^country: .*ISO 3166-1 alpha-2/)]);
    expect(await refusal(await card({ currency: "ABC" }))).toEqual(["currency: an ISO 4217 currency code, such as BRL or USD"]);
    expect(await refusal(await client({ currency: "ZZZ" }))).toEqual(["currency: an ISO 4217 currency code, such as BRL or USD"]);
    expect(await refusal(await client({ timezone: "utc" }))).toEqual(["timezone: time zone names are case-sensitive: UTC"]);
    expect(await refusal(await client({ timezone: "america/sao_paulo" }))).toEqual(["timezone: time zone names are case-sensitive: America/Sao_Paulo"]);
    expect(await refusal(await client({ timezone: "+03:00" }))).toEqual(["timezone: an IANA time zone such as America/Sao_Paulo, not an offset"]);
    expect(await refusal(await client({ timezone: "Mars/Olympus" }))).toEqual(["timezone: an IANA time zone such as America/Sao_Paulo"]);
    expect(await refusal(await client({ name: "   " }))).toHaveLength(1);
    // A NUL in a name went into the billing CSV; a right-to-left override displays it as other text.
    for (const name of ["Acme\u0000", "\u202eemca", "Acme\u0085"]) expect(await refusal(await client({ name })), name).toEqual(["name: must be plain text, without control characters"]);
    expect(await refusal(await client({ phone_number_ids: ["abc def"] }))).toEqual([expect.stringMatching(/^phone_number_ids\.0: letters, digits/)]);
    // Admin bodies are strict: a misspelt field is named, not dropped for its default.
    expect(await refusal(await client({ timezon: "America/Sao_Paulo" }))).toEqual([expect.stringContaining('"timezon"')]);
    expect(await refusal(await postJson("/v1/admin/users", { email: `${unique("u")}@example.com`, password: "a-long-enough-one", role: "viewer", clients: [] }, token))).toEqual([expect.stringContaining('"clients"')]);
    expect(await refusal(await postJson(`/v1/admin/clients/${(await createClient()).id}`, { active: false, acitve: true }, token, "PATCH"))).toEqual([expect.stringContaining('"acitve"')]);
  });

  it("takes what is right as it is given: an alias zone, a trimmed name, a territory a number resolves to", async () => {
    const token = await admin();
    const id = unique("ok");
    const created = await postJson("/v1/admin/clients", { id, name: "  Acme Índia  ", timezone: "Asia/Kolkata", currency: "INR", phone_number_ids: ["106540352242900", "pn:a.b_c-1"] }, token);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ name: "Acme Índia", timezone: "Asia/Kolkata", currency: "INR" });
    expect((await postJson("/v1/admin/rate-cards", { client_id: id, category: "utility", country: "XK", unit_price_micros: 1, currency: "EUR" }, token, "PUT")).status).toBe(200);
  });
});

describe("admin: lists past D1's 100 bound parameters a statement", () => {
  const password = "a-Long-unusual-pass-77";
  const manyClients = async (n: number) => {
    const ids = Array.from({ length: n }, () => unique("mc"));
    await env.DB.batch(ids.map((id) => env.DB.prepare("INSERT INTO clients (id, name, created_at) VALUES (?, ?, ?)").bind(id, id, Date.now())));
    return ids;
  };

  it("gives a viewer 150 clients, on creation and by a change, and lists them to the viewer", async () => {
    const token = await admin();
    const ids = await manyClients(150);
    const created = await postJson("/v1/admin/users", { email: `${unique("many")}@example.com`, password, role: "viewer", client_ids: ids }, token);
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const changed = await postJson(`/v1/admin/users/${id}`, { client_ids: [...ids.slice(75), (await createClient()).id] }, token, "PATCH");
    expect(changed.status).toBe(200);
    expect(((await changed.json()) as { client_ids: string[] }).client_ids).toHaveLength(76);
    const listed = await call("/v1/clients", authed(await signIn("viewer", ids)));
    expect(((await listed.json()) as { clients: { id: string }[] }).clients.map((c) => c.id)).toEqual([...ids].sort());
  });

  it("lists a viewer's 150 clients a page at a time, each once, in id order, and an admin's pages as the whole list", async () => {
    const ids = await manyClients(150);
    const pages = async (token: string, limit: number) => {
      const seen: string[][] = [];
      let next: string | null = null;
      do {
        const res = await call(`/v1/clients?limit=${limit}${next === null ? "" : `&start_after=${next}`}`, authed(token));
        expect(res.status).toBe(200);
        const body = (await res.json()) as { clients: { id: string }[]; next: string | null };
        seen.push(body.clients.map((c) => c.id));
        next = body.next;
      } while (next !== null && seen.length < 500);
      return seen;
    };
    const viewer = await pages(await signIn("viewer", ids), 40);
    expect(viewer.map((p) => p.length)).toEqual([40, 40, 40, 30]);
    expect(viewer.flat()).toEqual([...ids].sort());
    // A last page that is exactly full says so by an empty next one, not by a `next` past the end.
    expect((await pages(await signIn("viewer", ids), 50)).map((p) => p.length)).toEqual([50, 50, 50]);
    const token = await admin();
    const whole = (await (await call("/v1/clients", authed(token))).json()) as { clients: { id: string }[]; next: string | null };
    expect(whole.next).toBeNull();
    expect((await pages(token, 7)).flat()).toEqual(whole.clients.map((c) => c.id));
    for (const bad of ["limit=0", "limit=1001", "limit=ten", "start_after=%20"]) expect((await call(`/v1/clients?${bad}`, authed(token))).status, bad).toBe(400);
  });

  it("names the unknown ones among 150 clients, and a client listed twice, as the caller's fault", async () => {
    const token = await admin();
    const ids = await manyClients(149);
    const unknown = await postJson("/v1/admin/users", { email: `${unique("many")}@example.com`, password, role: "viewer", client_ids: [...ids, "no-such-client"] }, token);
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: { code: "unknown_clients", details: ["no-such-client"] } });
    // A 409 here said "read it again and retry", which could never succeed.
    const twice = await postJson("/v1/admin/users", { email: `${unique("dup")}@example.com`, password, role: "viewer", client_ids: [ids[0], ids[0]] }, token);
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({ error: { code: "validation_failed", details: [{ path: "client_ids", message: "a client id is listed twice" }] } });
  });

  it("routes 150 phone numbers to a client, and moves them to another", async () => {
    const token = await admin();
    const phones = Array.from({ length: 150 }, (_, i) => `${unique("pn")}-${i}`);
    const first = unique("ph");
    // D1 counts every statement of a batch against a request's 1,000 queries (local D1 does not).
    const batchSizes: number[] = [];
    const counting = withMethods(env.DB, { batch: <T,>(statements: D1PreparedStatement[]) => (batchSizes.push(statements.length), env.DB.batch<T>(statements)) });
    const created = await withEnv({ DB: counting }, "/v1/admin/clients", authed(token, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: first, name: "Many numbers", phone_number_ids: phones }) }));
    expect(created.status).toBe(201);
    expect(Math.max(...batchSizes)).toBeLessThan(5);
    const taken = await postJson("/v1/admin/clients", { id: unique("ph"), name: "Taker", phone_number_ids: phones }, token);
    expect(taken.status).toBe(409);
    expect(((await taken.json()) as { error: { details: string[] } }).error.details).toHaveLength(150);
    expect((await postJson(`/v1/admin/clients/${first}`, { phone_number_ids: phones.slice(0, 20) }, token, "PATCH")).status).toBe(200);
    const second = await postJson("/v1/admin/clients", { id: unique("ph"), name: "Taker", phone_number_ids: phones.slice(20) }, token);
    expect(second.status).toBe(201);
    expect(((await second.json()) as { phone_number_ids: string[] }).phone_number_ids).toEqual([...phones.slice(20)].sort());
  });
});

describe("admin: a client's objects", () => {
  /** `n` message ids of shard `shard` of a client of `shards`. */
  function messagesOf(shard: number, shards: number, n: number): string[] {
    const out: string[] = [];
    while (out.length < n) {
      const m = `m-${unique("obj")}`;
      if (messageShard(m, shards) === shard) out.push(m);
    }
    return out;
  }

  it("shows each shard's storage, last day's events and busiest minute, and the lake backlog until a flush", async () => {
    const token = await admin();
    const { id } = await createClient({ shards: 2 });
    const now = Date.now();
    const minute = minuteOf(now) - 5 * 60_000;
    // Shard 0: three events in one minute and one in another; shard 1: two events in one minute.
    const timed: [string, number][] = [
      ...messagesOf(0, 2, 3).map((m): [string, number] => [m, minute]),
      ...messagesOf(0, 2, 1).map((m): [string, number] => [m, minute - 60_000]),
      ...messagesOf(1, 2, 2).map((m): [string, number] => [m, minute]),
    ];
    const events = timed.map(([m, at]) => ({ event_id: `${m}:accepted`, message_id: m, client_id: id, status: "accepted", occurred_at: at + 1_000, recipient: "5511987654321" }));
    const posted = await postEvents(events, await ingestKey());
    expect(posted.status).toBe(200);

    const read = async () => {
      const res = await call(`/v1/admin/clients/${id}/objects`, authed(token));
      expect(res.status).toBe(200);
      return (await res.json()) as ClientObjects;
    };
    const before = await read();
    expect(before).toMatchObject({ client_id: id, shards: 2, events_last_24h: 6, storage_limit_bytes: 10_000_000_000, shards_for_storage: 1 });
    expect(before.objects.map((o) => [o.shard, o.events_last_24h, o.busiest_minute_events, o.lake_backlog_events, o.lake_flush_failures])).toEqual([
      [0, 4, 3, 4, 0],
      [1, 2, 2, 2, 0],
    ]);
    for (const o of before.objects) {
      expect(o.storage_bytes).toBeGreaterThan(0);
      expect(o.event_tables).toEqual([eventTableFor(now)]);
      // A flush is due within the flush interval.
      expect(o.next_alarm_at).toBeGreaterThan(now - 1_000);
      expect(o.next_alarm_at).toBeLessThanOrEqual(Date.now() + 60_000);
    }
    expect(before.storage_bytes).toBe(before.objects[0]!.storage_bytes + before.objects[1]!.storage_bytes);
    // The request made one call to each shard; their rows are the ones the request stated.
    expect(before.objects.map((o) => [o.ingest.commits, o.ingest.kafka, o.ingest.whatsapp.calls])).toEqual([
      [1, { calls: 1, events: 4, accepted: 4 }, 0],
      [1, { calls: 1, events: 2, accepted: 2 }, 0],
    ]);
    expect(before.objects[0]!.ingest.rows_written + before.objects[1]!.ingest.rows_written).toBe(Number(posted.headers.get(INGEST_STATS_HEADERS.rowsWritten)));

    expect((await call(`/v1/admin/flush?client_id=${id}`, authed(token, { method: "POST" }))).status).toBe(200);
    const after = await read();
    expect(after.objects.map((o) => o.lake_backlog_events)).toEqual([0, 0]);
    expect(after.events_last_24h).toBe(6);
  });

  it("sizes shards by ~1.3 M events a day per object (docs/capacity.md, \"Per-object storage\")", () => {
    expect([0, 1_000, 1_315_789, 1_315_790, 40_000_000].map(shardsForStorage)).toEqual([1, 1, 1, 2, 31]);
  });

  it("answers 404 for a client that does not exist", async () => {
    const res = await call(`/v1/admin/clients/${unique("nobody")}/objects`, authed(await admin()));
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("client_not_found");
  });
});

describe("admin: rate cards", () => {
  it("upserts the default and a client-specific price", async () => {
    const token = await admin();
    const { id } = await createClient();
    const first = await postJson("/v1/admin/rate-cards", { client_id: null, category: "utility", country: "AR", unit_price_micros: 8000, currency: "USD" }, token, "PUT");
    expect(first.status).toBe(200);
    const again = await postJson("/v1/admin/rate-cards", { client_id: null, category: "utility", country: "AR", unit_price_micros: 9000, currency: "USD" }, token, "PUT");
    const a = (await first.json()) as { id: number };
    expect(await again.json()).toEqual({ id: a.id, client_id: null, category: "utility", country: "AR", unit_price_micros: 9000, currency: "USD", valid_from: "1970-01-01" });
    const own = await postJson("/v1/admin/rate-cards", { client_id: id, category: "marketing", country: "*", unit_price_micros: 50_000, currency: "BRL", valid_from: "2026-11-01" }, token, "PUT");
    expect(await own.json()).toMatchObject({ client_id: id, valid_from: "2026-11-01" });
    const changed = await postJson("/v1/admin/rate-cards", { client_id: id, category: "marketing", country: "*", unit_price_micros: 55_000, currency: "BRL", valid_from: "2026-11-01" }, token, "PUT");
    expect(changed.status).toBe(200);
    const audit = (await (await call(`/v1/admin/audit?action=rate_card.put&target=${id}`, authed(token))).json()) as { entries: { details: unknown }[] };
    expect(audit.entries.map((e) => e.details)).toEqual([
      { category: "marketing", country: "*", valid_from: "2026-11-01", unit_price_micros: 55_000, currency: "BRL", previous: { unit_price_micros: 50_000, currency: "BRL" } },
      { category: "marketing", country: "*", valid_from: "2026-11-01", unit_price_micros: 50_000, currency: "BRL", previous: null },
    ]);
    expect((await postJson("/v1/admin/rate-cards", { client_id: "ghost", category: "marketing", country: "*", unit_price_micros: 1, currency: "BRL" }, token, "PUT")).status).toBe(404);
    expect((await postJson("/v1/admin/rate-cards", { client_id: null, category: "marketing", country: "*", unit_price_micros: 1.5, currency: "BRL" }, token, "PUT")).status).toBe(400);
  });
});

describe("admin: concurrent rate-card puts", () => {
  it("audits, for each put, the price its own write replaced: the changes chain from nothing to the final price", async () => {
    const token = await signIn("admin");
    const { id } = await createClient();
    const prices = Array.from({ length: 8 }, (_, i) => 1_000 + i);
    const card = { client_id: id, category: "utility", country: "AR", currency: "BRL", valid_from: "2026-11-01" };
    const answers = await Promise.all(prices.map((p) => postJson("/v1/admin/rate-cards", { ...card, unit_price_micros: p }, token, "PUT")));
    expect(answers.map((r) => r.status)).toEqual(prices.map(() => 200));
    const cards = ((await (await call("/v1/admin/rate-cards", authed(token))).json()) as { rate_cards: { client_id: string | null; unit_price_micros: number }[] }).rate_cards.filter((r) => r.client_id === id);
    expect(cards).toHaveLength(1);
    const audit = (await (await call(`/v1/admin/audit?action=rate_card.put&target=${id}`, authed(token))).json()) as {
      entries: { details: { unit_price_micros: number; previous: { unit_price_micros: number } | null } }[];
    };
    // Each put replaced the price of exactly one other (or none, the first): following the
    // replacements from nothing visits every put once and ends at the card's price.
    const byPrevious = new Map(audit.entries.map((e) => [e.details.previous?.unit_price_micros ?? null, e.details.unit_price_micros]));
    expect(byPrevious.size).toBe(prices.length);
    const visited: number[] = [];
    for (let p = byPrevious.get(null); p !== undefined; p = byPrevious.get(p)) visited.push(p);
    expect(visited.sort((a, b) => a - b)).toEqual(prices);
    expect(byPrevious.has(cards[0]!.unit_price_micros)).toBe(false);
  });
});

describe("admin: users and API keys", () => {
  it("creates a viewer scoped to clients, who can then sign in", async () => {
    const token = await admin();
    const { id } = await createClient();
    const email = `${unique("v")}@example.com`;
    const res = await postJson("/v1/admin/users", { email, password: "a long password", role: "viewer", client_ids: [id] }, token);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ email, role: "viewer", client_ids: [id] });
    // One account per address, however it is typed.
    const twice = await postJson("/v1/admin/users", { email: email.toUpperCase(), password: "a long password", role: "viewer" }, token);
    expect([twice.status, ((await twice.json()) as { error: { code: string } }).error.code]).toEqual([409, "user_exists"]);
    const ghost = await postJson("/v1/admin/users", { email: `${unique("g")}@example.com`, password: "a long password", role: "viewer", client_ids: [id, "no-such-client"] }, token);
    expect([ghost.status, await ghost.json()]).toEqual([400, { error: { code: "unknown_clients", message: expect.any(String), details: ["no-such-client"] } }]);
    const short = { email: `${unique("s")}@example.com`, role: "viewer" };
    expect((await postJson("/v1/admin/users", { ...short, password: "7chars!" }, token)).status).toBe(400);
    expect((await postJson("/v1/admin/users", { ...short, password: "8chars!!" }, token)).status).toBe(201);
    const login = await postJson("/v1/auth/login", { email, password: "a long password" });
    expect(((await login.json()) as { user: { client_ids: string[] } }).user.client_ids).toEqual([id]);
  });

  it("writes a user and its clients together: a failure on the way leaves neither, and the retry creates both", async () => {
    const token = await admin();
    const { id } = await createClient();
    const email = `${unique("atomic")}@example.com`;
    const body = JSON.stringify({ email, password: "a long password", role: "viewer", client_ids: [id] });
    const init = { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body };
    // D1 refuses the batch that holds the user's clients (every other statement goes through).
    const d1DownForScopes = d1RefusingBatchesOf(/^insert into "user_clients"/i);
    const failed = await withEnv({ DB: d1DownForScopes }, "/v1/admin/users", init);
    expect([failed.status, ((await failed.json()) as { error: { code: string } }).error.code]).toEqual([503, "storage_unavailable"]);
    expect((await postJson("/v1/auth/login", { email, password: "a long password" })).status).toBe(401);
    const retried = await call("/v1/admin/users", init);
    expect([retried.status, await retried.json()]).toEqual([201, expect.objectContaining({ email, client_ids: [id] })]);
    const login = await postJson("/v1/auth/login", { email, password: "a long password" });
    expect(((await login.json()) as { user: { client_ids: string[] } }).user.client_ids).toEqual([id]);
  });

  it("refuses weak passwords on creation and on change, saying why, and creates nothing", async () => {
    const token = await admin();
    const email = `${unique("weak")}@example.com`;
    const weak = { password: "it is one of the most common passwords", "12345678": "it is one of the most common passwords", Qwertyuiop: "it is one of the most common passwords",
      aaaaaaaa: "it is one character repeated", "        ": "it is one character repeated", [email]: "it is the user's email", [email.split("@")[0]!.toUpperCase()]: "it is the user's email",
      "zapmeter-dev": "it is the documented development password" };
    for (const [password, reason] of Object.entries(weak)) {
      const res = await postJson("/v1/admin/users", { email, password, role: "viewer" }, token);
      expect([res.status, await res.json()], password).toEqual([400, { error: { code: "weak_password", message: `choose another password: ${reason}`, details: { reason: expect.any(String) } } }]);
    }
    const created = await postJson("/v1/admin/users", { email, password: "a long password", role: "viewer" }, token);
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: number };
    const changed = await postJson(`/v1/admin/users/${id}`, { password: "iloveyou" }, token, "PATCH");
    expect(((await changed.json()) as { error: { code: string } }).error.code).toBe("weak_password");
    expect((await postJson("/v1/auth/login", { email, password: "a long password" })).status).toBe(200);
  });

  it("changes a user's role and clients, and ends their sessions on a new password or deactivation", async () => {
    const token = await admin();
    const [a, b] = [await createClient(), await createClient()];
    const email = `${unique("v")}@example.com`;
    const { id } = (await (await postJson("/v1/admin/users", { email, password: "first password", role: "viewer", client_ids: [a.id] }, token)).json()) as { id: number };
    const session = ((await (await postJson("/v1/auth/login", { email, password: "first password" })).json()) as { token: string }).token;
    const patch = (body: unknown) => postJson(`/v1/admin/users/${id}`, body, token, "PATCH");

    const moved = await patch({ client_ids: [b.id] });
    expect(await moved.json()).toEqual({ id, email, role: "viewer", active: true, client_ids: [b.id] });
    expect((await call(`/v1/clients/${a.id}`, authed(session))).status).toBe(403);
    expect((await call(`/v1/clients/${b.id}`, authed(session))).status).toBe(200);
    expect(((await (await patch({ role: "finance" })).json()) as { role: string }).role).toBe("finance");

    expect((await patch({ password: "second password" })).status).toBe(200);
    expect((await call("/v1/me", authed(session))).status).toBe(401);
    expect((await postJson("/v1/auth/login", { email, password: "first password" })).status).toBe(401);
    const again = ((await (await postJson("/v1/auth/login", { email, password: "second password" })).json()) as { token: string }).token;
    expect((await call("/v1/me", authed(again))).status).toBe(200);

    expect((await patch({ active: false })).status).toBe(200);
    expect((await call("/v1/me", authed(again))).status).toBe(401);
    const listed = (await (await call("/v1/admin/users", authed(token))).json()) as { users: { id: number }[] };
    expect(listed.users.find((u) => u.id === id)).toEqual({ id, email, role: "finance", active: false, client_ids: [b.id] });
    // Reactivated, the user signs in anew; the sessions of before stay over.
    expect((await patch({ active: true })).status).toBe(200);
    expect((await call("/v1/me", authed(again))).status).toBe(401);
    expect((await postJson("/v1/auth/login", { email, password: "second password" })).status).toBe(200);
  });

  it("refuses an unknown user, unknown clients, an empty change and an admin demoting itself", async () => {
    const token = await admin();
    const me = ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
    const code = async (res: Response) => [res.status, ((await res.json()) as { error?: { code: string } }).error?.code];
    expect(await code(await postJson("/v1/admin/users/999999", { role: "viewer" }, token, "PATCH"))).toEqual([404, "user_not_found"]);
    expect(await code(await postJson(`/v1/admin/users/${me}`, { client_ids: ["no-such-client"] }, token, "PATCH"))).toEqual([400, "unknown_clients"]);
    expect(await code(await postJson(`/v1/admin/users/${me}`, {}, token, "PATCH"))).toEqual([400, "validation_failed"]);
    expect(await code(await postJson(`/v1/admin/users/${me}`, { role: "viewer" }, token, "PATCH"))).toEqual([409, "own_access"]);
    expect(await code(await postJson(`/v1/admin/users/${me}`, { active: false }, token, "PATCH"))).toEqual([409, "own_access"]);
  });

  it("keeps one admin when the last two demote each other at the same moment", async () => {
    const [tokenA, tokenB] = [await signIn("admin"), await signIn("admin")];
    const idOf = async (token: string) => ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
    const [a, b] = [await idOf(tokenA), await idOf(tokenB)];
    // The file's other admins are set aside for this test, so that A and B are the last two.
    const aside = await env.DB.prepare("UPDATE users SET active = 0 WHERE role = 'admin' AND active = 1 AND id NOT IN (?, ?) RETURNING id").bind(a, b).all<{ id: number }>();
    onTestFinished(async () => {
      await env.DB.prepare("UPDATE users SET active = 1 WHERE id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(aside.results.map((r) => r.id))).run();
    });
    // A's demotion of B has passed every check and is held at its write.
    const held = gatedDb(/update "users" set "role"/);
    const aDemotesB = withEnv({ DB: held.DB }, `/v1/admin/users/${b}`, authed(tokenA, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ role: "viewer" }) }));
    await held.reached;
    expect((await postJson(`/v1/admin/users/${a}`, { role: "viewer" }, tokenB, "PATCH")).status).toBe(200);
    held.release();
    const refused = await aDemotesB;
    expect([refused.status, ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([409, "last_admin"]);
    const admins = await env.DB.prepare("SELECT id FROM users WHERE role = 'admin' AND active = 1").all<{ id: number }>();
    expect(admins.results.map((r) => r.id)).toEqual([b]);
  });

  it("keeps one admin when a user read as a viewer became the last admin before the change that deactivates them is written", async () => {
    const [tokenA, tokenC] = [await signIn("admin"), await signIn("viewer")];
    const idOf = async (token: string) => ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
    const [a, cId] = [await idOf(tokenA), await idOf(tokenC)];
    const aside = await env.DB.prepare("UPDATE users SET active = 0 WHERE role = 'admin' AND active = 1 AND id != ? RETURNING id").bind(a).all<{ id: number }>();
    onTestFinished(async () => {
      await env.DB.prepare("UPDATE users SET active = 1 WHERE id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(aside.results.map((r) => r.id))).run();
    });
    // A's deactivation of C, read while C was a viewer, is held at its write.
    const held = gatedDb(/update "users" set "active"/);
    const aDeactivatesC = withEnv({ DB: held.DB }, `/v1/admin/users/${cId}`, authed(tokenA, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ active: false }) }));
    await held.reached;
    // Meanwhile A makes C an admin, and C, now one, deactivates A.
    expect((await postJson(`/v1/admin/users/${cId}`, { role: "admin" }, tokenA, "PATCH")).status).toBe(200);
    expect((await postJson(`/v1/admin/users/${a}`, { active: false }, tokenC, "PATCH")).status).toBe(200);
    held.release();
    const refused = await aDeactivatesC;
    expect([refused.status, ((await refused.json()) as { error?: { code: string } }).error?.code]).toEqual([409, "last_admin"]);
    const admins = await env.DB.prepare("SELECT id FROM users WHERE role = 'admin' AND active = 1").all<{ id: number }>();
    expect(admins.results.map((r) => r.id)).toEqual([cId]);
  });

  it("leaves the clients of an admin whose demotion is refused as last_admin as they were", async () => {
    const [tokenA, tokenB] = [await signIn("admin"), await signIn("admin")];
    const idOf = async (token: string) => ((await (await call("/v1/me", authed(token))).json()) as { user: { id: number } }).user.id;
    const [a, b] = [await idOf(tokenA), await idOf(tokenB)];
    const [kept, offered] = [await createClient(), await createClient()];
    expect((await postJson(`/v1/admin/users/${b}`, { client_ids: [kept.id] }, tokenA, "PATCH")).status).toBe(200);
    const aside = await env.DB.prepare("UPDATE users SET active = 0 WHERE role = 'admin' AND active = 1 AND id NOT IN (?, ?) RETURNING id").bind(a, b).all<{ id: number }>();
    onTestFinished(async () => {
      await env.DB.prepare("UPDATE users SET active = 1 WHERE id IN (SELECT value FROM json_each(?))").bind(JSON.stringify(aside.results.map((r) => r.id))).run();
    });
    // A's demotion of B, which also gives B other clients, is held at its write; B demotes A meanwhile.
    const held = gatedDb(/update "users" set "role"/);
    const aDemotesB = withEnv({ DB: held.DB }, `/v1/admin/users/${b}`, authed(tokenA, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ role: "viewer", client_ids: [offered.id] }) }));
    await held.reached;
    expect((await postJson(`/v1/admin/users/${a}`, { role: "viewer" }, tokenB, "PATCH")).status).toBe(200);
    held.release();
    expect((await aDemotesB).status).toBe(409);
    // Nothing of the refused change is written: not the role, and not the clients either.
    const scopes = await env.DB.prepare("SELECT client_id FROM user_clients WHERE user_id = ?").bind(b).all<{ client_id: string }>();
    expect(scopes.results.map((r) => r.client_id)).toEqual([kept.id]);
  });

  it("shows a new key once, lists keys without it, and a revoked key stops working", async () => {
    const token = await admin();
    const { id } = await createClient();
    const created = await postJson("/v1/admin/api-keys", { scope: "ingest", client_id: id, label: "kafka prod" }, token);
    expect(created.status).toBe(201);
    const key = (await created.json()) as { id: string; key: string; client_id: string };
    expect(key.key).toMatch(/^zmk_[0-9a-f]{64}$/);
    const listed = await (await call("/v1/admin/api-keys", authed(token))).text();
    expect(listed).toContain(key.id);
    expect(listed).not.toContain(key.key);
    const ev = { event_id: unique("k"), message_id: "m", client_id: id, status: "sent", occurred_at: Date.now(), recipient: "5511999999999" };
    expect((await postEvents([ev], key.key)).status).toBe(200);
    // Scoped: a batch all of another client's is refused.
    const other = await createClient();
    const foreign = await postEvents([{ ...ev, event_id: unique("k"), client_id: other.id }], key.key);
    expect([foreign.status, ((await foreign.json()) as { error: { code: string } }).error.code]).toEqual([403, "client_not_allowed"]);
    const kept = (await (await postJson("/v1/admin/api-keys", { scope: "ingest" }, token)).json()) as { id: string; key: string; client_id: string | null };
    expect(kept.client_id).toBeNull();

    const revoke = () => call(`/v1/admin/api-keys/${key.id}`, authed(token, { method: "DELETE" }));
    const first = await revoke();
    expect(first.status).toBe(200);
    const { revoked_at } = (await first.json()) as { revoked_at: number };
    expect((await postEvents([ev], key.key)).status).toBe(401);
    // Revoking again keeps when it was first revoked; the other key still works.
    expect(await (await revoke()).json()).toEqual({ id: key.id, revoked_at });
    expect((await postEvents([{ ...ev, event_id: unique("k") }], kept.key)).status).toBe(200);
    const keys = ((await (await call("/v1/admin/api-keys", authed(token))).json()) as { api_keys: { id: string; client_id: string | null; label: string | null; revoked_at: number | null }[] }).api_keys;
    expect(keys.find((k) => k.id === key.id)).toMatchObject({ client_id: id, label: "kafka prod", revoked_at });
    expect(keys.find((k) => k.id === kept.id)).toMatchObject({ client_id: null, revoked_at: null });

    const missing = await call("/v1/admin/api-keys/key_nope", authed(token, { method: "DELETE" }));
    expect([missing.status, ((await missing.json()) as { error: { code: string } }).error.code]).toEqual([404, "api_key_not_found"]);
    const ghost = await postJson("/v1/admin/api-keys", { scope: "ingest", client_id: "no-such-client" }, token);
    expect([ghost.status, ((await ghost.json()) as { error: { code: string } }).error.code]).toEqual([404, "client_not_found"]);
  });
});

describe("admin: the audit log", () => {
  type Entries = { entries: { id: number; at: number; actor: string; action: string; target: string | null; details: Record<string, unknown> | null }[]; next: number | null };
  const auditOf = async (token: string, query: string) => {
    const res = await call(`/v1/admin/audit?${query}`, authed(token));
    expect(res.status).toBe(200);
    return (await res.json()) as Entries;
  };

  it("lists who did what, newest first, by action, kind of action, actor and target, a page at a time", async () => {
    const email = `${unique("auditor")}@example.com`;
    const token = await signIn("admin");
    const me = ((await (await call("/v1/me", authed(token))).json()) as { user: { email: string } }).user.email;
    const since = Date.now();
    const ids = [unique("audited-a"), unique("audited-b"), unique("audited-c")];
    for (const id of ids) expect((await postJson("/v1/admin/clients", { id, name: id }, token)).status).toBe(201);
    expect((await postJson("/v1/admin/users", { email, password: "a long enough one", role: "viewer" }, token)).status).toBe(201);

    const mine = await auditOf(token, `actor=${encodeURIComponent(me)}`);
    expect(mine.entries.map((e) => [e.action, e.target])).toEqual([["user.create", email], ...ids.map((id) => ["client.create", id]).reverse()]);
    expect(mine.entries[0]!.details).toEqual({ role: "viewer" });
    expect(mine.entries.every((e) => e.at >= since && e.actor === me)).toBe(true);

    const first = await auditOf(token, `actor=${encodeURIComponent(me)}&action=client.create&limit=2`);
    expect(first.entries.map((e) => e.target)).toEqual([ids[2], ids[1]]);
    const second = await auditOf(token, `actor=${encodeURIComponent(me)}&action=client.create&limit=2&before=${first.next}`);
    expect([second.entries.map((e) => e.target), second.next]).toEqual([[ids[0]], null]);

    expect((await auditOf(token, `target=${ids[1]}`)).entries.map((e) => e.action)).toEqual(["client.create"]);
    expect((await auditOf(token, `actor=${encodeURIComponent(me)}&action=client.`)).entries).toHaveLength(3);
    expect((await auditOf(token, `actor=${encodeURIComponent(me)}&action=client`)).entries).toHaveLength(0);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await auditOf(token, `from=${later}`)).entries).toHaveLength(0);
    // A page that ends exactly at the last entry says there is no next one.
    expect((await auditOf(token, `actor=${encodeURIComponent(me)}&action=client.create&limit=3`)).next).toBeNull();
    // `from` is inclusive, `to` exclusive, to the millisecond.
    const at = new Date(mine.entries[0]!.at).toISOString();
    const userCreates = (q: string) => auditOf(token, `actor=${encodeURIComponent(me)}&action=user.create&${q}`);
    expect((await userCreates(`from=${at}`)).entries).toHaveLength(1);
    expect((await userCreates(`to=${at}`)).entries).toHaveLength(0);
  });

  it("records each admin change with what it changed: a client's fields before and after, a user's changed fields, keys made and revoked", async () => {
    const token = await signIn("admin");
    const me = ((await (await call("/v1/me", authed(token))).json()) as { user: { email: string } }).user.email;
    const { id, phones } = await createClient();
    const moved = unique("pn");
    expect((await postJson(`/v1/admin/clients/${id}`, { name: "Renamed", phone_number_ids: [moved], active: false }, token, "PATCH")).status).toBe(200);
    const email = `${unique("audited")}@example.com`;
    const user = (await (await postJson("/v1/admin/users", { email, password: "a long enough one", role: "viewer" }, token)).json()) as { id: number };
    expect((await postJson(`/v1/admin/users/${user.id}`, { role: "finance", password: "another long one" }, token, "PATCH")).status).toBe(200);
    const key = (await (await postJson("/v1/admin/api-keys", { scope: "ingest", client_id: id }, token)).json()) as { id: string };
    const revoke = () => call(`/v1/admin/api-keys/${key.id}`, authed(token, { method: "DELETE" }));
    expect((await revoke()).status).toBe(200);
    // A second revoke changes nothing, so it records nothing.
    expect((await revoke()).status).toBe(200);

    const { entries } = await auditOf(token, `actor=${encodeURIComponent(me)}`);
    expect(entries.map((e) => [e.action, e.target, e.details])).toEqual([
      ["api_key.revoke", key.id, null],
      ["api_key.create", key.id, { client_id: id }],
      // Names only: a password is never logged.
      ["user.update", email, { fields: ["password", "role"] }],
      ["user.create", email, { role: "viewer" }],
      ["client.update", id, { before: { name: `Client ${id}`, phone_number_ids: phones, active: true }, after: { name: "Renamed", phone_number_ids: [moved], active: false } }],
    ]);
  });

  it("refuses a bad query with 400", async () => {
    const token = await admin();
    for (const q of ["limit=0", "limit=501", "before=-3", "from=yesterday", "from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z"]) {
      const res = await call(`/v1/admin/audit?${q}`, authed(token));
      expect([q, res.status]).toEqual([q, 400]);
    }
    // A number that is not one is named as such, not as zod's NaN.
    for (const q of ["limit=abc", "limit=1.5", "before=x"]) {
      const res = await call(`/v1/admin/audit?${q}`, authed(token));
      const body = (await res.json()) as { error: { code: string; details: { path: string; message: string }[] } };
      expect([q, res.status, body.error.code, body.error.details]).toEqual([q, 400, "validation_failed", [{ path: q.split("=")[0], message: "expected a whole number" }]]);
    }
  });
});

describe("admin routes require an admin", () => {
  it("answers 401 without a session and 403 for finance and viewers", async () => {
    const finance = await signIn("finance");
    const viewer = await signIn("viewer");
    for (const [method, path] of [
      ["GET", "/v1/admin/clients"],
      ["POST", "/v1/admin/clients"],
      ["PUT", "/v1/admin/rate-cards"],
      ["POST", "/v1/admin/users"],
      ["POST", "/v1/admin/api-keys"],
      ["GET", "/v1/admin/audit"],
    ] as const) {
      const init = { method, headers: { "content-type": "application/json" }, body: method === "GET" ? undefined : "{}" };
      expect((await call(path, init)).status).toBe(401);
      expect((await call(path, authed(finance, init))).status).toBe(403);
      expect((await call(path, authed(viewer, init))).status).toBe(403);
    }
  });
});

describe("a field sent as null, a query parameter left empty: both mean left out", () => {
  it("creates a client, a user, a key and a price with null for every optional field, as if it were absent", async () => {
    const token = await admin();
    const id = unique("nulls");
    const client = await postJson("/v1/admin/clients", { id, name: "Nulls", timezone: null, currency: null, phone_number_ids: null, shards: null }, token);
    expect([client.status, await client.json()]).toEqual([201, { id, name: "Nulls", timezone: "UTC", currency: "BRL", shards: 1, active: true, phone_number_ids: [] }]);
    const email = `${unique("n")}@example.com`;
    const user = await postJson("/v1/admin/users", { email, password: "a long password", role: "admin", client_ids: null }, token);
    expect([user.status, await user.json()]).toEqual([201, expect.objectContaining({ email, client_ids: [] })]);
    const key = await postJson("/v1/admin/api-keys", { scope: "ingest", client_id: null, label: null }, token);
    expect([key.status, await key.json()]).toEqual([201, expect.objectContaining({ client_id: null })]);
    const card = { client_id: id, category: "utility", country: "BR", unit_price_micros: 8_000, currency: "BRL" };
    expect(await (await postJson("/v1/admin/rate-cards", { ...card, valid_from: null }, token, "PUT")).json()).toMatchObject({ ...card, valid_from: "1970-01-01" });
    expect(await (await postJson("/v1/live/ticket", { client_id: null }, token)).json()).toEqual({ ticket: expect.stringMatching(/^zlt_/), expires_at: expect.any(Number) });
    // Null is not a value of its own where the field has none to stand for: an empty id is still refused.
    expect((await postJson("/v1/admin/api-keys", { scope: "ingest", client_id: "" }, token)).status).toBe(400);
  });

  it("reads an empty query parameter as absent (a form's field left blank)", async () => {
    const token = await admin();
    const date = "2026-11-20";
    const all = await call(`/v1/billing?date=${date}`, authed(token));
    const blank = await call(`/v1/billing?date=${date}&client_id=`, authed(token));
    expect([blank.status, await blank.json()]).toEqual([all.status, await all.json()]);
    const { id } = await createClient();
    const report = await call(`/v1/clients/${id}/report?from=${date}&to=2026-11-21&format=&times=&status=`, authed(token));
    expect([report.status, report.headers.get("content-type")]).toEqual([200, expect.stringContaining("text/csv")]);
    expect((await call("/v1/admin/flush?client_id=", authed(token, { method: "POST" }))).status).toBe(200);
    expect((await call(`/v1/clients/${id}/counters?from=&to=2026-11-21`, authed(token))).status).toBe(400);
  });
});
