import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { classify } from "../../scripts/bridge/policy.ts";

/**
 * The shipped Kafka Connect and Redpanda Connect configurations (docs/kafka/) must treat the answers of
 * POST /v1/ingest/events as the bridge does (policy.ts): what the bridge retries or stops on (a wrong key
 * or URL) must hold the stream back, never be committed past or diverted to a dead-letter topic; only
 * what the bridge dead-letters (a batch refused for its content) may be. And they must send what the
 * endpoint accepts. No Kafka Connect or Redpanda Connect runs here: this checks the settings.
 */

const read = (name: string) => readFileSync(new URL(`../../docs/kafka/${name}`, import.meta.url), "utf8");
/** Every status the endpoint answers (DESIGN.md, workers/routes/ingest.ts), plus the platform's and Cloudflare's edge's. */
const ENDPOINT_STATUSES = [200, 400, 401, 403, 404, 408, 413, 415, 425, 429, 500, 501, 502, 503, 504, 505, 520, 522, 524, 530];
const REFUSALS = ENDPOINT_STATUSES.filter((s) => s >= 300);
/** The bridge gives these records up for good (dead letters, or halving down to them); everything else it retries or stops on. */
const bridgeGivesUp = (status: number) => ["dead_letter", "split"].includes(classify(status, null).kind);

/** Confluent's retry.on.status.codes: codes and inclusive ranges, `500-` meaning 500 and above. */
function confluentRetries(spec: string): (status: number) => boolean {
  const parts = spec.split(",").map((p) => p.trim());
  return (status) =>
    parts.some((p) => {
      const m = /^(\d{3})(-(\d{3})?)?$/.exec(p);
      if (!m) throw new Error(`unreadable retry.on.status.codes entry ${p}`);
      const from = Number(m[1]);
      if (!m[2]) return status === from;
      return status >= from && (m[3] === undefined || status <= Number(m[3]));
    });
}

/** A flow-style YAML list such as `backoff_on: [ 429, 503 ]`. */
function yamlCodes(yaml: string, field: string): number[] {
  const m = new RegExp(`^\\s*${field}:\\s*\\[([^\\]]*)\\]`, "m").exec(yaml);
  if (!m) throw new Error(`${field} missing`);
  return m[1]!.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
}

describe("Confluent HTTP Sink config (docs/kafka/confluent-http-sink.json)", () => {
  const { config } = JSON.parse(read("confluent-http-sink.json")) as { config: Record<string, string> };

  it("posts JSON arrays of schemaless values with the bearer key to /v1/ingest/events", () => {
    expect(config["connector.class"]).toBe("io.confluent.connect.http.HttpSinkConnector");
    expect(new URL(config["http.api.url"]!).pathname).toBe("/v1/ingest/events");
    const headers = config.headers!.split(config["header.separator"]!);
    expect(headers).toContain("Authorization:Bearer dev-ingest-key");
    expect(headers).toContain("Content-Type:application/json");
    expect(config).toMatchObject({
      "request.body.format": "json",
      "batch.json.as.array": "true",
      "value.converter": "org.apache.kafka.connect.json.JsonConverter",
      "value.converter.schemas.enable": "false",
    });
    expect(Number(config["batch.max.size"])).toBeLessThanOrEqual(10_000);
  });

  it("retries everything the bridge retries or stops on, and fails the task rather than commit past a refusal", () => {
    const retries = confluentRetries(config["retry.on.status.codes"]!);
    for (const status of REFUSALS) expect([status, retries(status)]).toEqual([status, !bridgeGivesUp(status)]);
    // Whatever is still refused (or out of retries) stops the task, offsets uncommitted.
    expect(config["behavior.on.error"]).toBe("fail");
    expect(config["reporter.error.topic.name"]).toBe("wa-events.dlq");
    expect(config["errors.deadletterqueue.topic.name"]).toBeTruthy();
  });

  it("does not copy every stored record to a success topic", () => {
    expect(config["reporter.result.topic.name"]).toBe("");
  });
});

describe("Redpanda Connect config (docs/kafka/redpanda-connect.yaml)", () => {
  const yaml = read("redpanda-connect.yaml");

  it("batches into one JSON array per request with the bearer key", () => {
    expect(yaml).toMatch(/url: "\$\{ZAPMETER_URL:http:\/\/localhost:8787\}\/v1\/ingest\/events"/);
    expect(yaml).toMatch(/Authorization: "Bearer \$\{ZAPMETER_INGEST_KEY:dev-ingest-key\}"/);
    expect(yaml).toMatch(/Content-Type: application\/json/);
    expect(yaml).toMatch(/- archive:\s+format: json_array/);
    expect(Number(/^\s*count: (\d+)/m.exec(yaml)![1])).toBeLessThanOrEqual(10_000);
  });

  it("drops to the dead-letter topic only what the bridge dead-letters, and backs off on everything else", () => {
    const backoff = yamlCodes(yaml, "backoff_on");
    const drop = yamlCodes(yaml, "drop_on");
    for (const status of REFUSALS) {
      // http_client retries every non-2xx that drop_on does not list; backoff_on makes the waits grow.
      expect([status, drop.includes(status)]).toEqual([status, bridgeGivesUp(status)]);
      if (!bridgeGivesUp(status)) expect([status, backoff.includes(status)]).toEqual([status, true]);
    }
    expect(yaml).toMatch(/fallback:/);
    expect(yaml).toMatch(/topic: wa-events\.dlq/);
  });

  it("writes dead letters as the messages they were: fallback hands over single messages, not the archived array", () => {
    expect(yaml).not.toMatch(/unarchive/);
  });
});
