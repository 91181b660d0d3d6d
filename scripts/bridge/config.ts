import { parseArgs } from "node:util";
import { MAX_RECORDS_PER_POST } from "./core.ts";
import type { KafkaConnection } from "./kafkajs-adapter.ts";

export const USAGE = `usage: npm run bridge -- --brokers host:9092[,host2:9092] --topic T --group G [options]

  --url URL              zapmeter base URL (default $ZAPMETER_URL or http://localhost:8787)
  --dlq-topic T          dead-letter topic for refused records (default <topic>.dlq)
  --batch-size N         records per POST, 1..${MAX_RECORDS_PER_POST} (default 500)
  --linger-ms N          how long partial batches wait for more records (default 100)
  --max-in-flight N      POSTs under way at once, retries included (default 8)
  --concurrency N        partitions handled at once (default 4)
  --from-latest          a group with no committed offset starts at the log end, skipping what the
                         topic holds (default: at the earliest offset, like Kafka Connect)
  --progress-seconds N   progress line interval, 0 = off (default 5)
  --ssl                  TLS to the brokers
  --client-id ID         Kafka client id (default zapmeter-bridge)

  The ingest key comes from $ZAPMETER_INGEST_KEY. SASL: $KAFKA_SASL_MECHANISM (plain, scram-sha-256,
  scram-sha-512) with $KAFKA_USERNAME and $KAFKA_PASSWORD.`;

export class UsageError extends Error {}
/** `--help`: print the usage and exit successfully. */
export class HelpRequested extends Error {}

export interface BridgeConfig {
  kafka: KafkaConnection;
  topic: string;
  group: string;
  dlqTopic: string;
  endpoint: string;
  apiKey: string;
  batchSize: number;
  lingerMs: number;
  maxInFlight: number;
  concurrency: number;
  /** Where a group with no committed (or an expired) offset starts: the earliest offset, or the log end. */
  fromBeginning: boolean;
  progressSeconds: number;
}

function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}..${max}`);
  return n;
}

const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512"] as const;

/** Reads the command line and environment; throws UsageError with a readable reason. Secrets only from `env`. */
export function parseBridgeArgs(argv: string[], env: Record<string, string | undefined>): BridgeConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        brokers: { type: "string" },
        topic: { type: "string" },
        group: { type: "string" },
        url: { type: "string" },
        "dlq-topic": { type: "string" },
        "batch-size": { type: "string" },
        "linger-ms": { type: "string" },
        "max-in-flight": { type: "string" },
        concurrency: { type: "string" },
        "from-latest": { type: "boolean" },
        // The default, accepted so that command lines written for the old default keep working.
        "from-beginning": { type: "boolean" },
        "progress-seconds": { type: "string" },
        ssl: { type: "boolean" },
        "client-id": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) throw new HelpRequested();
  if (values["from-latest"] && values["from-beginning"]) throw new UsageError("--from-latest and --from-beginning exclude each other");
  const missing = (["brokers", "topic", "group"] as const).filter((k) => !values[k]);
  if (missing.length > 0) throw new UsageError(`missing ${missing.map((m) => `--${m}`).join(", ")}`);
  const apiKey = env.ZAPMETER_INGEST_KEY;
  if (!apiKey) throw new UsageError("set ZAPMETER_INGEST_KEY to an ingest API key");
  const base = values.url ?? env.ZAPMETER_URL ?? "http://localhost:8787";
  let url: URL;
  try {
    url = new URL("/v1/ingest/events", base);
  } catch {
    // Not echoed, here or below: a mistyped URL may hold a password, and stderr goes to logs.
    throw new UsageError("--url is not a URL");
  }
  if (url.username || url.password) throw new UsageError("--url must not hold credentials: the ingest key comes from ZAPMETER_INGEST_KEY");
  // fetch refuses either before sending, which the bridge would take for a network failure and retry for ever.
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`--url must be http:// or https://, not ${url.protocol}`);
  const endpoint = url.toString();
  const dlqTopic = values["dlq-topic"] ?? `${values.topic}.dlq`;
  // Each dead letter would be read again, refused again and written again, without end.
  if (dlqTopic === values.topic) throw new UsageError("--dlq-topic must not be the topic the bridge reads");
  const kafka: KafkaConnection = {
    brokers: values.brokers!.split(",").map((b) => b.trim()).filter(Boolean),
    clientId: values["client-id"] ?? "zapmeter-bridge",
    ssl: values.ssl ?? false,
  };
  if (kafka.brokers.length === 0) throw new UsageError("--brokers names no broker");
  const mechanism = env.KAFKA_SASL_MECHANISM?.toLowerCase();
  if (mechanism) {
    if (!(SASL_MECHANISMS as readonly string[]).includes(mechanism)) throw new UsageError(`KAFKA_SASL_MECHANISM must be one of ${SASL_MECHANISMS.join(", ")}`);
    if (!env.KAFKA_USERNAME || !env.KAFKA_PASSWORD) throw new UsageError("SASL needs KAFKA_USERNAME and KAFKA_PASSWORD");
    kafka.sasl = { mechanism: mechanism as (typeof SASL_MECHANISMS)[number], username: env.KAFKA_USERNAME, password: env.KAFKA_PASSWORD };
  }
  return {
    kafka,
    topic: values.topic!,
    group: values.group!,
    dlqTopic,
    endpoint,
    apiKey,
    batchSize: intOption("batch-size", values["batch-size"], 500, 1, MAX_RECORDS_PER_POST),
    lingerMs: intOption("linger-ms", values["linger-ms"], 100, 0, 60_000),
    maxInFlight: intOption("max-in-flight", values["max-in-flight"], 8, 1, 256),
    concurrency: intOption("concurrency", values.concurrency, 4, 1, 1000),
    fromBeginning: !values["from-latest"],
    progressSeconds: intOption("progress-seconds", values["progress-seconds"], 5, 0, 3600),
  };
}
