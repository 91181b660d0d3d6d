import { createServer } from "node:net";
import { setImmediate as tick, setTimeout as wait } from "node:timers/promises";
import kafkajs from "kafkajs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Bridge, BridgeFatal } from "../../scripts/bridge/core.ts";
import { httpPoster } from "../../scripts/bridge/ingest-client.ts";
import { startBridge } from "../../scripts/bridge/run.ts";
import { type Answer, type Seen, bridgeOn, cleanups, endOffsets, endpoint, event, fresh, header, idsOf, produce, runCleanups, until } from "./bridge-harness.ts";
import type { MemoryConsumer } from "./bridge-memory-kafka.ts";
import type { SourceBatch } from "../../scripts/bridge/ports.ts";

/**
 * The bridge core driven by an in-process broker that behaves like Kafka and a scripted HTTP endpoint on
 * a real local socket (bridge-harness.ts; the real Worker is exercised in test/e2e/bridge.test.ts).
 */

afterEach(runCleanups);

describe("batching and commits", () => {
  it("posts several clients' records in one JSON array, each client's together, with the bearer key, and commits only after the 2xx", async () => {
    const kafka = fresh();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const ep = await endpoint(async () => {
      await released;
      return { status: 200 };
    });
    const { running } = await bridgeOn(kafka, ep.url);
    const group = kafka.group("g", "wa");
    const ids = produce(kafka, { acme: 12, globex: 7, initech: 3 });

    await until("the request", () => ep.requests.length === 1);
    expect(group.committed.size).toBe(0);
    release();
    await until("everything committed", () => group.lag() === 0);

    expect(ep.requests).toHaveLength(1);
    const [request] = ep.requests;
    expect(request!.auth).toBe("Bearer zmk_test");
    expect(idsOf(ep.requests).sort()).toEqual([...ids].sort());
    // One run per client: the endpoint then makes one Durable Object call per client.
    const runs = request!.events.map((e) => e.client_id).filter((c, i, all) => c !== all[i - 1]);
    expect(runs.sort()).toEqual(["acme", "globex", "initech"]);
    expect(group.committed).toEqual(endOffsets(kafka));
    expect(running.bridge.progress.snapshot()).toMatchObject({ delivered: 22, deadLettered: 0, lag: 0 });
  });

  it("with a key per record posts few requests, never more than --max-in-flight at once", async () => {
    const kafka = fresh(3);
    let inFlight = 0;
    let mostInFlight = 0;
    const ep = await endpoint(async () => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      await wait(10);
      inFlight -= 1;
      return { status: 200 };
    });
    await bridgeOn(kafka, ep.url, { batchSize: 100, maxInFlight: 3, maxBatch: 500 });
    const values = Array.from({ length: 2000 }, (_, i) => ({ key: `wamid.${i}`, value: event(`client-${i % 40}`) }));
    kafka.produce("wa", values);
    await until("everything committed", () => kafka.group("g", "wa").lag() === 0);

    expect(idsOf(ep.requests)).toHaveLength(2000);
    expect(Math.max(...ep.requests.map((r) => r.events.length))).toBeLessThanOrEqual(100);
    // 2,000 requests of one record each before; now close to 2,000 / 100.
    expect(ep.requests.length).toBeLessThanOrEqual(30);
    expect(mostInFlight).toBeLessThanOrEqual(3);
  });

  it.each([
    ["no key", null],
    ["an empty key", ""],
  ])("groups records with %s by their value's client_id", async (_what, key) => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 200 }));
    await bridgeOn(kafka, ep.url);
    kafka.produce("wa", ["acme", "globex", "acme", "globex"].map((client) => ({ key, value: event(client) })));
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(ep.requests.map((r) => r.events.map((e) => e.client_id))).toEqual([["acme", "acme", "globex", "globex"]]);
  });

  it("splits a client's records into posts of at most --batch-size", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 200 }));
    await bridgeOn(kafka, ep.url, { batchSize: 4, maxBatch: 100 });
    const ids = produce(kafka, { acme: 10 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(ep.requests.map((r) => r.events.length)).toEqual([4, 4, 2]);
    expect(idsOf(ep.requests)).toEqual(ids);
  });
});

describe("retries", () => {
  it("retries network failures, 429 and 503 (honouring Retry-After) and commits only after the 2xx", async () => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    const committedAt: number[] = [];
    const ep = await endpoint(({ n }) => {
      committedAt.push(group.committed.size);
      if (n === 1) return { status: 0, drop: true };
      if (n === 2) return { status: 429, headers: { "retry-after": "2" }, body: { error: { code: "rate_limited", message: "slow down" } } };
      if (n === 3) return { status: 503, body: { error: { code: "downstream_unavailable", message: "retry" } } };
      return { status: 200 };
    });
    const { delays } = await bridgeOn(kafka, ep.url);
    const ids = produce(kafka, { acme: 5 });
    await until("committed", () => group.lag() === 0);

    expect(ep.requests).toHaveLength(4);
    for (const r of ep.requests) expect(r.events.map((e) => e.event_id)).toEqual(ids);
    expect(committedAt).toEqual([0, 0, 0, 0]);
    expect(delays).toHaveLength(3);
    // Retry-After: 2, and up to 20 % more so that bridges told the same do not come back together.
    expect(delays[1]).toBeGreaterThanOrEqual(2000);
    expect(delays[1]).toBeLessThanOrEqual(2400);
    // Exponential backoff with jitter: attempt 2 of base 250 ms lies in [500, 1000].
    expect(delays[2]).toBeGreaterThanOrEqual(500);
    expect(delays[2]).toBeLessThanOrEqual(1000);
    expect(group.commitLog).toEqual([{ member: expect.any(String), partition: 0, offset: "5" }]);
  });
});

describe("edge answers", () => {
  it("gives up on a request the endpoint never answers and sends it again", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(async ({ n }) => {
      if (n === 1) await new Promise<never>(() => {});
      return { status: 200 };
    });
    await bridgeOn(kafka, ep.url, { timeoutMs: 100 });
    const ids = produce(kafka, { acme: 3 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    // Two requests at least: on a slow machine a retry may time out too.
    expect(ep.requests.length).toBeGreaterThanOrEqual(2);
    for (const r of ep.requests) expect(r.events.map((e) => e.event_id)).toEqual(ids);
  });

  it("retries a Cloudflare edge error (522, an HTML page) like any transient 5xx", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(({ n }) => (n === 1 ? { status: 522, headers: { "content-type": "text/html" }, body: "<html>Connection timed out</html>" } : { status: 200 }));
    await bridgeOn(kafka, ep.url);
    const ids = produce(kafka, { acme: 3 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(ep.requests.map((r) => r.events.map((e) => e.event_id))).toEqual([ids, ids]);
  });

  it("stops on a redirect without following it, saying the URL is wrong", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 301, headers: { location: "https://zm.example.com/v1/ingest/events" } }));
    const { running } = await bridgeOn(kafka, ep.url);
    produce(kafka, { acme: 2 });
    const fatal = await running.done;
    expect(fatal).toMatchObject({ status: 301, code: "redirect" });
    expect(fatal!.message).toContain("the URL is wrong: it redirects to https://zm.example.com/v1/ingest/events");
    expect(ep.requests).toHaveLength(1);
    expect(kafka.group("g", "wa").committed.size).toBe(0);
  });
});

describe("dead letters", () => {
  it("sends the records the endpoint rejected to the dead-letter topic, retrying it, and still commits", async () => {
    const kafka = fresh(1);
    const ep = await endpoint((r) => ({
      status: 200,
      body: { accepted: r.events.length - 1, duplicates: 0, rejected: [{ index: 1, code: "invalid_event", message: "recipient: Required" }] },
    }));
    const dlq = kafka.deadLetters("wa.dlq");
    const consumer = kafka.consumer({ group: "g", topic: "wa" });
    const running = await startBridge(consumer, { post: httpPoster(ep.url, "k"), deadLetters: dlq, lingerMs: 5, sleep: () => tick() }, { progressSeconds: 0, print: () => {} });
    cleanups.push(() => running.stop());
    dlq.failures = 2;
    produce(kafka, { acme: 3 });
    const second = kafka.partitions("wa")[0]![1]!;
    await until("committed", () => kafka.group("g", "wa").lag() === 0);

    const letters = kafka.messages("wa.dlq");
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      key: "acme",
      value: second.value,
      headers: {
        "zapmeter.error.status": "200",
        "zapmeter.error.code": "invalid_event",
        "zapmeter.error.message": "recipient: Required",
        "zapmeter.source.topic": "wa",
        "zapmeter.source.partition": "0",
        "zapmeter.source.offset": "1",
      },
    });
    expect(running.bridge.progress.snapshot()).toMatchObject({ delivered: 2, deadLettered: 1, retries: 2 });
  });

  it("maps a 200's rejected indices to the right records of a request that mixes clients", async () => {
    const kafka = fresh(3);
    const isOdd = (id: string) => Number(/^e(\d+):/.exec(id)![1]) % 2 === 1;
    const ep = await endpoint(({ events }) => {
      const rejected = events.flatMap((e, index) => (isOdd(e.event_id) ? [{ index, code: "invalid_event", message: `${e.event_id} refused` }] : []));
      return { status: 200, body: { accepted: events.length - rejected.length, duplicates: 0, rejected } };
    });
    const { running } = await bridgeOn(kafka, ep.url);
    const ids = produce(kafka, { acme: 5, globex: 4, initech: 3 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);

    expect(ep.requests).toHaveLength(1);
    const letters = kafka.messages("wa.dlq");
    const refused = ids.filter(isOdd);
    expect(letters.map((m) => (JSON.parse(String(m.value)) as { event_id: string }).event_id).sort()).toEqual([...refused].sort());
    for (const m of letters) expect(m.headers["zapmeter.error.message"]).toBe(`${(JSON.parse(String(m.value)) as { event_id: string }).event_id} refused`);
    expect(running.bridge.progress.snapshot()).toMatchObject({ delivered: ids.length - refused.length, deadLettered: refused.length });
  });

  it("halves a request on 413 until it fits; a record refused even alone goes to the dead-letter topic", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(({ events }) => {
      if (events.length > 4 || events.some((e) => e.client_id === "huge")) return { status: 413, body: { error: { code: "payload_too_large", message: "send smaller batches" } } };
      return { status: 200 };
    });
    await bridgeOn(kafka, ep.url);
    const ids = produce(kafka, { acme: 6, huge: 1, globex: 3 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);

    expect(ep.requests.map((r) => r.events.length)).toEqual([10, 5, 3, 2, 5, 3, 2, 1, 1, 1, 2]);
    const stored = ep.requests.filter((r) => r.events.length <= 4 && !r.events.some((e) => e.client_id === "huge"));
    expect(idsOf(stored).sort()).toEqual(ids.filter((_, i) => i !== 6).sort());
    expect(kafka.messages("wa.dlq").map((m) => [m.key, m.headers["zapmeter.error.status"], m.headers["zapmeter.error.code"]])).toEqual([["huge", "413", "payload_too_large"]]);
  });

  it("dead-letters every record of a request answered 400", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 400, body: { error: { code: "malformed_batch", message: "not an array of events" } } }));
    await bridgeOn(kafka, ep.url);
    produce(kafka, { acme: 2, globex: 1 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(ep.requests).toHaveLength(1);
    expect(header(kafka, "zapmeter.error.code")).toEqual(["malformed_batch", "malformed_batch", "malformed_batch"]);
  });

  it.each([
    ["fills exactly", 3, 2],
    ["overflows by one byte", 2, 1],
  ])("keeps each request's body within the byte cap counted in UTF-8 bytes (a cap two records' body %s); a record over the cap goes alone", async (_, slack, perRequest) => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 200 }));
    /** A record of exactly `bytes` UTF-8 bytes, mostly two-byte characters: in UTF-16 units it looks half its size. */
    const sized = (client: string, bytes: number) => {
      const bare = event(client, { template: "" });
      const pad = bytes - Buffer.byteLength(bare);
      return bare.replace(`"template":""`, `"template":"${"ç".repeat(Math.floor(pad / 2))}${"x".repeat(pad % 2)}"`);
    };
    const size = 700;
    // Two records' body is their text, the comma between them and the brackets: 2 * size + 3 bytes.
    const maxBytes = 2 * size + slack;
    await bridgeOn(kafka, ep.url, { maxBytes });
    kafka.produce("wa", Array.from({ length: 12 }, (_, i) => ({ key: `k${i % 3}`, value: sized("acme", size) })));
    kafka.produce("wa", [{ key: "huge", value: sized("huge", 2 * maxBytes) }]);
    await until("committed", () => kafka.group("g", "wa").lag() === 0);

    const isHuge = (r: Seen) => r.events.some((e) => e.client_id === "huge");
    expect(ep.requests.filter(isHuge).map((r) => r.events.length)).toEqual([1]);
    const packed = ep.requests.filter((r) => !isHuge(r));
    expect(packed.map((r) => r.events.length)).toEqual(Array(12 / perRequest).fill(perRequest));
    for (const r of packed) expect(r.bytes).toBeLessThanOrEqual(maxBytes);
  });

  it.each<[string, Answer, () => string]>([
    ["rejected in a 200", { status: 200, body: { accepted: 0, duplicates: 0, rejected: [{ index: 0, code: "invalid_event", message: "recipient: Required" }] } }, () => event("acme")],
    ["refused with a 400", { status: 400, body: { error: { code: "malformed_batch", message: "not an array of events" } } }, () => event("acme")],
    ["that is not JSON", { status: 200 }, () => "{not json"],
  ])("does not commit a record %s while the dead-letter topic refuses it; after a stop the next member dead-letters it", async (_, answer, value) => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    const ep = await endpoint(() => answer);
    const first = await bridgeOn(kafka, ep.url);
    first.deadLetters.failures = Infinity;
    kafka.produce("wa", [{ key: "acme", value: value() }]);
    await until("the dead-letter topic refused", () => first.running.bridge.progress.snapshot().retries > 0);
    await first.running.stop();
    expect(group.committed.size).toBe(0);

    await bridgeOn(kafka, ep.url);
    await until("committed", () => group.lag() === 0);
    expect(kafka.messages("wa.dlq")).toHaveLength(1);
  });

  it("dead-letters values that are not JSON and tombstones without posting them", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 200 }));
    await bridgeOn(kafka, ep.url);
    kafka.produce("wa", [
      { key: "acme", value: "{not json" },
      { key: "acme", value: null },
      { key: "acme", value: event("acme") },
    ]);
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(ep.requests.map((r) => r.events.length)).toEqual([1]);
    expect(header(kafka, "zapmeter.error.code")).toEqual(["invalid_json", "empty_value"]);
  });

  it("dead-letters a record whose key or value is not UTF-8 with its bytes as they came, never posts it as text, and commits past it", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(() => ({ status: 200 }));
    const { running } = await bridgeOn(kafka, ep.url);
    // A Latin-1 producer's "café:delivered" and "cafè:delivered" (0xE9, 0xE8): read leniently both are
    // "caf\uFFFD:delivered", and the endpoint would store the first and count the second as its duplicate.
    const cafe = Buffer.from(event("acme", { event_id: "café:delivered" }), "latin1");
    const cafeGrave = Buffer.from(event("acme", { event_id: "cafè:delivered" }), "latin1");
    const acmeLatin1 = Buffer.from("acmé", "latin1");
    const aside = event("acme");
    const valid = event("acme", { event_id: "ação:delivered", template: "promoção 🎉" });
    kafka.produce("wa", [
      { key: "acme", value: cafe },
      { key: "acme", value: cafeGrave },
      { key: acmeLatin1, value: aside },
      { key: Buffer.from("acme"), value: Buffer.from(valid) },
    ]);
    await until("committed", () => kafka.group("g", "wa").lag() === 0);

    expect(ep.requests.map((r) => r.events)).toEqual([[JSON.parse(valid)]]);
    expect(ep.requests[0]!.bytes).toBe(Buffer.byteLength(`[${valid}]`));
    expect(kafka.messages("wa.dlq").map((m) => [m.key, m.value, m.headers["zapmeter.error.code"], m.headers["zapmeter.error.message"], m.headers["zapmeter.source.offset"]])).toEqual([
      ["acme", cafe, "invalid_utf8", "value is not UTF-8", "0"],
      ["acme", cafeGrave, "invalid_utf8", "value is not UTF-8", "1"],
      [acmeLatin1, aside, "invalid_utf8", "key is not UTF-8", "2"],
    ]);
    expect(kafka.group("g", "wa").committed.get(0)).toBe(4n);
    expect(running.bridge.progress.snapshot()).toMatchObject({ delivered: 1, deadLettered: 3 });
  });
});

describe("stopping", () => {
  it("stops on 401 without committing or dead-lettering anything", async () => {
    const kafka = fresh();
    const ep = await endpoint(() => ({ status: 401, body: { error: { code: "invalid_api_key", message: "Authorization: Bearer <ingest API key> is missing or not valid" } } }));
    // Requests of two, one at a time: the records still waiting must not be posted with a key known to be wrong.
    const { running, consumer } = await bridgeOn(kafka, ep.url, { key: "wrong", batchSize: 2, maxInFlight: 1 });
    produce(kafka, { acme: 4, globex: 4 });
    const fatal = await running.done;
    expect(ep.requests).toHaveLength(1);
    expect(fatal).toBeInstanceOf(BridgeFatal);
    expect(fatal).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(consumer.state).toBe("stopped");
    expect(kafka.group("g", "wa").committed.size).toBe(0);
    expect(kafka.messages("wa.dlq")).toEqual([]);
  });

  it("stops once, on the first refusal, when requests in flight are refused after it", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(async ({ n }) => {
      if (n === 1) return { status: 401, body: { error: { code: "invalid_api_key", message: "not valid" } } };
      await wait(50);
      return { status: 403, body: { error: { code: "forbidden", message: "no" } } };
    });
    const { running, lines } = await bridgeOn(kafka, ep.url, { batchSize: 2, maxInFlight: 3 });
    kafka.produce("wa", ["acme", "acme", "globex", "globex", "initech", "initech"].map((client) => ({ key: client, value: event(client), partition: 0 })));
    const fatal = await running.done;
    expect(ep.requests).toHaveLength(3);
    expect(fatal).toMatchObject({ status: 401, code: "invalid_api_key" });
    expect(lines.filter((l) => l.startsWith("bridge: stopping:"))).toEqual(["bridge: stopping: ingest endpoint answered 401 invalid_api_key: not valid"]);
    expect(kafka.group("g", "wa").committed.size).toBe(0);
  });

  it("on stop sends at once what waits for the linger, and commits it before the consumer stops", async () => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    const ep = await endpoint(() => ({ status: 200 }));
    const { running, consumer } = await bridgeOn(kafka, ep.url, { lingerMs: 3_600_000 });
    const ids = produce(kafka, { acme: 3 });
    await until("the batch handed over", () => consumer.inFlight.size === 1);
    expect(ep.requests).toHaveLength(0);
    await running.stop();
    expect(idsOf(ep.requests)).toEqual(ids);
    expect(group.committed).toEqual(new Map([[0, 3n]]));
  });

  it("on stop waits for a dead letter being written, and commits its batch before the consumer stops", async () => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    const ep = await endpoint(() => ({ status: 200 }));
    const { running, deadLetters } = await bridgeOn(kafka, ep.url);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const send = deadLetters.send;
    let writing = false;
    deadLetters.send = async (letters) => {
      writing = true;
      await released;
      return send(letters);
    };
    kafka.produce("wa", [{ key: "acme", value: "{not json" }]);
    await until("the dead letter being written", () => writing);

    const stopped = running.stop();
    release();
    await stopped;
    expect(header(kafka, "zapmeter.error.code")).toEqual(["invalid_json"]);
    expect(group.committed).toEqual(new Map([[0, 1n]]));
  });

  it("on stop lets the request in flight finish and commit before the consumer stops, leaves retrying records uncommitted, and a restart resumes there", async () => {
    const kafka = fresh(2);
    const group = kafka.group("g", "wa");
    let stopRequested!: () => void;
    const stopping = new Promise<void>((r) => (stopRequested = r));
    let healthy = false;
    const ep = await endpoint(async ({ events }) => {
      if (healthy) return { status: 200 };
      if (events[0]!.client_id === "acme") {
        await stopping;
        return { status: 200 };
      }
      return { status: 503, body: { error: { code: "downstream_unavailable", message: "retry" } } };
    });
    // acme's six fill a request of their own at once; globex's four follow in another after the linger.
    // Its backoff lasts until the stop, as the real one does.
    const untilStopped = (_ms: number, signal: AbortSignal) => new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
    const first = await bridgeOn(kafka, ep.url, { batchSize: 6, sleep: untilStopped });
    const acme = produce(kafka, { acme: 6 }, 0);
    const globex = produce(kafka, { globex: 4 }, 1);
    await until("both clients posted", () => ep.requests.some((r) => r.events[0]!.client_id === "acme") && ep.requests.some((r) => r.events[0]!.client_id === "globex"));

    const stopped = first.running.stop();
    stopRequested();
    await stopped;
    expect(first.consumer.state).toBe("stopped");
    expect(group.committed).toEqual(new Map([[0, 6n]]));
    expect(group.commitLog).toHaveLength(1);
    // What the stop line reports is what the broker holds: one commit, globex's 4 records still to do.
    expect(first.running.bridge.progress.snapshot()).toMatchObject({ commits: 1, lag: 4 });
    // Woken by the stop, globex's backoff did not lead to another attempt.
    expect(ep.requests.filter((r) => r.events[0]!.client_id === "globex")).toHaveLength(1);

    healthy = true;
    const before = ep.requests.length;
    await bridgeOn(kafka, ep.url);
    await until("the rest committed", () => group.lag() === 0);
    expect(idsOf(ep.requests.slice(before))).toEqual(globex);
    expect(idsOf(ep.requests.slice(before))).not.toContain(acme[0]);
    expect(group.commitLog.map((c) => [c.partition, c.offset])).toEqual([
      [0, "6"],
      [1, "4"],
    ]);
  });
});

describe("group membership", () => {
  it("hands partitions over in a rebalance during retries; the new owner redelivers from the committed offset", async () => {
    const kafka = fresh(4);
    const group = kafka.group("g", "wa");
    let healthy = false;
    const accepted = new Set<string>();
    const ep = await endpoint(({ events }) => {
      if (!healthy) return { status: 503, body: { error: { code: "downstream_unavailable", message: "retry" } } };
      for (const e of events) accepted.add(e.event_id);
      return { status: 200 };
    });
    // No keep-alive heartbeat in time: a learns of the rebalance from the heartbeat after each backoff.
    const a = await bridgeOn(kafka, ep.url, { heartbeatMs: 3_600_000 });
    const ids = produce(kafka, { acme: 5, globex: 5, initech: 5, umbrella: 5, stark: 5 });
    await until("retrying", () => ep.requests.length >= 3);

    const b = await bridgeOn(kafka, ep.url);
    healthy = true;
    await until("everything committed", () => group.lag() === 0);

    expect(a.consumer.assignedPartitions().length).toBeGreaterThan(0);
    expect(b.consumer.assignedPartitions().length).toBeGreaterThan(0);
    expect([...accepted].sort()).toEqual([...ids].sort());
    expect(group.committed).toEqual(endOffsets(kafka));
    expect(group.refusedCommits).toEqual([]);
    assertMonotonicCommits(group.commitLog);
    // The partitions a gave away left its lag: their records, stuck here, were committed by b.
    expect(a.running.bridge.progress.snapshot().lag).toBe(0);
    expect(b.running.bridge.progress.snapshot().lag).toBe(0);
  });

  it("a member retrying the dead-letter topic lets its partition go in a rebalance, uncommitted", async () => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    const ep = await endpoint(() => ({ status: 200 }));
    const a = await bridgeOn(kafka, ep.url);
    a.deadLetters.failures = Infinity;
    kafka.produce("wa", [{ key: "acme", value: "{not json" }]);
    await until("the dead-letter topic refused", () => a.running.bridge.progress.snapshot().retries > 0);

    // Joining completes only once a's batch has ended.
    await bridgeOn(kafka, ep.url);
    expect(group.committed.size).toBe(0);
    a.deadLetters.failures = 0;
    await until("committed", () => group.lag() === 0);
    expect(header(kafka, "zapmeter.error.code")).toEqual(["invalid_json"]);
  });

  it("heartbeats the group while a request is outstanding (kafkajs itself heartbeats only between batches)", async () => {
    const kafka = fresh(1);
    const ep = await endpoint(async () => {
      await wait(100);
      return { status: 200 };
    });
    const { consumer } = await bridgeOn(kafka, ep.url, { heartbeatMs: 5 });
    produce(kafka, { acme: 3 });
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(consumer.heartbeats).toBeGreaterThanOrEqual(3);
  });

  it("a commit the group refuses (kafkajs' wrapped rebalance error) is logged, not thrown; the bridge keeps consuming and commits later", async () => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    const ep = await endpoint(() => ({ status: 200 }));
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    cleanups.push(() => logged.mockRestore());
    const { consumer, running } = await bridgeOn(kafka, ep.url);
    group.commitFailures.push(new kafkajs.KafkaJSNonRetriableError("The group is rebalancing, so a rejoin is needed"));
    const first = produce(kafka, { acme: 3 });
    await until("the refused commit", () => group.refusedCommits.length === 1);
    const later = produce(kafka, { acme: 2 });
    await until("everything committed", () => group.lag() === 0);

    expect(consumer.crashedWith).toBeUndefined();
    expect(consumer.state).toBe("running");
    expect(logged.mock.calls.map(([line]) => line)).toEqual([expect.stringMatching(/^bridge: commit of wa\/0 up to 3 refused, left to the next reader: The group is rebalancing/)]);
    // Nothing was resolved past the refused commit, so the same records came again and were stored twice (dedup's job).
    expect(idsOf(ep.requests).filter((id) => id === first[0])).toHaveLength(2);
    expect(idsOf(ep.requests)).toEqual(expect.arrayContaining(later));
    expect(group.commitLog.at(-1)).toMatchObject({ member: consumer.id, offset: "5" });
    expect(running.bridge.progress.snapshot().commits).toBe(group.commitLog.length);
  });

  it("after a crash, what was posted but not committed is delivered again by the next member", async () => {
    const kafka = fresh(1);
    const group = kafka.group("g", "wa");
    let victim: MemoryConsumer | undefined;
    const stored = new Set<string>();
    const ep = await endpoint(async ({ events }) => {
      if (victim) {
        // The process dies after the endpoint stored the batch, before its commit.
        await victim.crash();
        victim = undefined;
      }
      const novel = events.filter((e) => !stored.has(e.event_id));
      for (const e of novel) stored.add(e.event_id);
      return { status: 200, body: { accepted: novel.length, duplicates: events.length - novel.length, rejected: [] } };
    });
    const a = await bridgeOn(kafka, ep.url);
    victim = a.consumer;
    const ids = produce(kafka, { acme: 3 });
    await until("the victim's request", () => ep.requests.length === 1);
    await until("the victim's batch ended", () => a.consumer.inFlight.size === 0);
    expect(group.committed.size).toBe(0);

    const b = await bridgeOn(kafka, ep.url);
    await until("committed", () => group.lag() === 0);
    expect(ep.requests.map((r) => r.events.map((e) => e.event_id))).toEqual([ids, ids]);
    expect(group.commitLog).toEqual([{ member: b.consumer.id, partition: 0, offset: "3" }]);
    expect(group.refusedCommits).toEqual([]);
    // The endpoint answered them as duplicates: stored all the same, and counted so.
    expect(b.running.bridge.progress.snapshot()).toMatchObject({ delivered: 3, duplicates: 3 });
  });
});

function assertMonotonicCommits(log: { partition: number; offset: string }[]): void {
  const last = new Map<number, bigint>();
  for (const c of log) {
    expect(BigInt(c.offset)).toBeGreaterThan(last.get(c.partition) ?? 0n);
    last.set(c.partition, BigInt(c.offset));
  }
}

describe("a 2xx that is not the endpoint's answer (a wrong URL)", () => {
  it.each<[string, Answer]>([
    ["a proxy's or a web server's HTML page", { status: 200, headers: { "content-type": "text/html" }, body: "<html><body>Welcome</body></html>" }],
    ["an empty 204", { status: 204, body: "" }],
    ["JSON of something else", { status: 200, body: { ok: true } }],
  ])("(%s) stops the bridge saying the URL is wrong, committing nothing", async (_what, answer) => {
    const kafka = fresh(1);
    const ep = await endpoint(() => answer);
    const { running, lines } = await bridgeOn(kafka, ep.url);
    kafka.produce("wa", Array.from({ length: 5 }, () => ({ key: "acme", value: event("acme") })));
    const fatal = await running.done;
    expect(fatal?.code).toBe("not_ingest_answer");
    expect(lines[0]).toMatch(new RegExp(`stopping: ingest endpoint answered ${answer.status} not_ingest_answer: the URL is wrong`));
    // Taken for stored, every record would have been committed without being stored.
    expect(kafka.group("g", "wa").committed.size).toBe(0);
    expect(running.bridge.progress.snapshot().commits).toBe(0);
    expect(ep.requests).toHaveLength(1);
  });
});

describe("an endpoint that cannot be reached (wrong host or port)", () => {
  it("says why on stderr while it retries, not only a growing retry count", async () => {
    const errors: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void errors.push(a.join(" ")));
    cleanups.push(() => spy.mockRestore());
    // A port just freed: nothing listens, every request fails with ECONNREFUSED.
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    await new Promise((r) => server.close(r));
    const kafka = fresh(1);
    const { running, delays, lines } = await bridgeOn(kafka, `http://127.0.0.1:${port}/v1/ingest/events`);
    kafka.produce("wa", [{ key: "acme", value: event("acme") }]);
    await until("20 retries", () => delays.length >= 20);
    await running.stop();
    expect([...errors, ...lines].some((l) => /ECONNREFUSED/.test(l))).toBe(true);
  });
});

describe("what a retrying request says on stderr", () => {
  it("logs its first retry and every tenth, with the status and code, not one line a backoff", async () => {
    const errors: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void errors.push(a.join(" ")));
    cleanups.push(() => spy.mockRestore());
    const kafka = fresh(1);
    const ep = await endpoint(({ n }) => (n <= 21 ? { status: 503, body: { error: { code: "downstream_unavailable", message: "retry" } } } : { status: 200 }));
    const { delays } = await bridgeOn(kafka, ep.url);
    kafka.produce("wa", [{ key: "acme", value: event("acme") }]);
    await until("committed", () => kafka.group("g", "wa").lag() === 0);
    expect(delays).toHaveLength(21);
    // Attempts 0, 10 and 20 of the 21 that failed.
    expect(errors.filter((l) => l.includes("not stored"))).toEqual(Array(3).fill("bridge: 1 records not stored (503 downstream_unavailable), retrying"));
  });
});

describe("a batch handed over during a stop", () => {
  it("is held until the drain ends (returned at once, kafkajs would fetch it again and again), and is neither posted nor committed", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const posted: string[][] = [];
    const bridge = new Bridge({
      post: async (events) => {
        posted.push(events);
        await released;
        return { kind: "delivered", accepted: events.length, duplicates: 0, rejected: [] };
      },
      deadLetters: { send: async () => {} },
      lingerMs: 1,
    });
    const commits: number[] = [];
    const batchOf = (partition: number): SourceBatch => ({
      topic: "wa",
      partition,
      highWatermark: "1",
      records: [{ topic: "wa", partition, offset: "0", key: "acme", value: event("acme") }],
      commit: async () => void commits.push(partition),
      heartbeat: async () => {},
      isActive: () => true,
    });
    const first = bridge.handleBatch(batchOf(0));
    await until("the first batch posted", () => posted.length === 1);
    const stopped = bridge.stop();
    let lateReturned = false;
    const late = bridge.handleBatch(batchOf(1)).then(() => (lateReturned = true));
    await wait(30);
    expect(lateReturned).toBe(false);
    release();
    await Promise.all([stopped, first, late]);
    expect(lateReturned).toBe(true);
    expect(posted).toHaveLength(1);
    expect(commits).toEqual([0]);
  });
});

describe("stops and rebalances in the middle of delivery", () => {
  it("a stop while every request slot is taken sends the full buffers waiting for one and commits only what was posted", async () => {
    const kafka = fresh(2);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const ep = await endpoint(async () => {
      await released;
      return { status: 200 };
    });
    const { running } = await bridgeOn(kafka, ep.url, { maxInFlight: 1, batchSize: 5 });
    kafka.produce("wa", Array.from({ length: 20 }, () => ({ key: "acme", value: event("acme"), partition: 0 })));
    kafka.produce("wa", Array.from({ length: 20 }, () => ({ key: "globex", value: event("globex"), partition: 1 })));
    await until("the first request", () => ep.requests.length === 1);
    const stopped = running.stop();
    release();
    await stopped;
    const group = kafka.group("g", "wa");
    const posted = new Set(idsOf(ep.requests));
    for (const [p, next] of group.committed) {
      for (const m of kafka.partitions("wa")[p]!.slice(0, Number(next))) expect(posted.has(JSON.parse(m.value as string).event_id)).toBe(true);
    }
    expect(group.refusedCommits).toEqual([]);
  });

  it("a rebalance while a 413 is being halved commits nothing it did not store", async () => {
    const kafka = fresh(1);
    let gate: Promise<void> | null = null;
    const ep = await endpoint(async ({ events }) => {
      if (gate) await gate;
      return events.length > 2 ? { status: 413, body: { error: { code: "payload_too_large", message: "big" } } } : { status: 200 };
    });
    const first = await bridgeOn(kafka, ep.url, { sleep: async () => {} });
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    kafka.produce("wa", Array.from({ length: 8 }, () => ({ key: "acme", value: event("acme") })));
    await until("the first request", () => ep.requests.length === 1);
    const group = kafka.group("g", "wa");
    const second = kafka.consumer({ group: "g", topic: "wa" });
    const joining = second.run(async () => {}, () => {});
    await wait(20);
    open();
    gate = null;
    await joining;
    await first.running.stop();
    // Committed by the first member only once all 8 were stored, or not at all, leaving them to the new owner.
    const committed = group.committed.get(0);
    if (committed !== undefined) {
      expect(committed).toBe(8n);
      expect(new Set(idsOf(ep.requests.filter((r) => r.events.length <= 2))).size).toBe(8);
    }
    await second.stop();
  });
});
