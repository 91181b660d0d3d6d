import { httpPoster } from "./bridge/ingest-client.ts";
import { kafkaClient, kafkaConsumer, kafkaDeadLetters } from "./bridge/kafkajs-adapter.ts";
import { HelpRequested, USAGE, UsageError, parseBridgeArgs } from "./bridge/config.ts";
import { startBridge, type RunningBridge } from "./bridge/run.ts";
import { stopWithParent } from "./parent-watch.ts";

/**
 * `npm run bridge -- --brokers ... --topic ... --group ...`: consumes Kafka and posts batches (each
 * client's records together) to zapmeter's `POST /v1/ingest/events`, committing offsets only after they
 * are stored or dead-lettered.
 * SIGTERM/SIGINT drain and stop; exit code 1 when the endpoint refused the key or URL, 2 on bad usage.
 */
let config;
try {
  config = parseBridgeArgs(process.argv.slice(2), process.env);
} catch (e) {
  if (e instanceof HelpRequested) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!(e instanceof UsageError)) throw e;
  console.error(`bridge: ${e.message}\n\n${USAGE}`);
  process.exit(2);
}

const kafka = kafkaClient(config.kafka);
const deadLetters = kafkaDeadLetters(kafka, config.dlqTopic);
let running: RunningBridge;
try {
  await deadLetters.connect();
  running = await startBridge(
    kafkaConsumer(kafka, {
      groupId: config.group,
      topic: config.topic,
      fromBeginning: config.fromBeginning,
      partitionsConcurrently: config.concurrency,
      onCrash: (error) => {
        console.error(`bridge: Kafka consumer failed: ${error.message}`);
        process.exitCode = 1;
        void running.stop();
      },
    }),
    {
      post: httpPoster(config.endpoint, config.apiKey),
      deadLetters,
      maxBatchRecords: config.batchSize,
      lingerMs: config.lingerMs,
      maxInFlight: config.maxInFlight,
    },
    { progressSeconds: config.progressSeconds },
  );
} catch (e) {
  console.error(`bridge: cannot start: ${(e as Error).message}`);
  process.exit(1);
}
console.error(`bridge: ${config.topic} (group ${config.group}) → ${config.endpoint}, dead letters → ${config.dlqTopic}`);
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void running.stop());
stopWithParent(() => void running.stop());
const fatal = await running.done;
await deadLetters.disconnect();
process.exit(fatal ? 1 : (process.exitCode ?? 0));
