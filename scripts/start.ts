import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildPages } from "./dashboard-build.ts";
import { DEV_INGEST_KEY } from "./demo/catalog.ts";
import { runDemoTraffic } from "./demo/traffic.ts";
import { runLocalCrons } from "./local-crons.ts";
import { ROOT, assertPortFree, prepareLocalState, startWrangler } from "./local-stack.ts";
import { stopWithParent } from "./parent-watch.ts";

/**
 * `npm start`: the whole local stack in one process tree — dashboard build, D1 migrations + dev seed,
 * wrangler dev (Worker, Durable Objects, local D1/R2) on PORT, its Cron Triggers on their schedule,
 * and demo traffic unless DEMO=0. Ctrl-C stops everything.
 */
const port = Number(process.env.PORT ?? 8787);
const demo = process.env.DEMO !== "0";

// Before anything touches the build or the local state another stack may be serving.
await assertPortFree(port).catch((err: Error) => {
  console.error(`zapmeter: ${err.message}`);
  process.exit(1);
});
console.log("zapmeter: building the dashboard…");
buildPages();
console.log("zapmeter: applying D1 migrations and seeding dev data…");
await prepareLocalState();
console.log(`zapmeter: starting wrangler dev on port ${port}…`);
const stack = await startWrangler({ port, log: process.env.VERBOSE === "1" ? "inherit" : "quiet" });

const appSecret = readFileSync(join(ROOT, ".dev.vars"), "utf8").match(/^WHATSAPP_APP_SECRET=(.*)$/m)?.[1]?.trim() ?? "dev-app-secret";
const controller = new AbortController();
let sent = 0;
let failed = 0;
console.log(`
zapmeter is up: ${stack.url}
  dashboard   ${stack.url}/        (admin@example.com / zapmeter-dev)
  API         ${stack.url}/v1/openapi.json
  demo        ${demo ? "sending traffic for 50 clients (DEMO=0 to turn off)" : "off"}
  crons       fired on wrangler.toml's schedule (billing every 10 minutes, compaction and credential purge at 03:30 UTC)
Ctrl-C stops everything.
`);
runLocalCrons(stack.url, controller.signal, (cron, status) => {
  if (status !== 200) console.error(`cron ${cron}: the local trigger answered ${status || "nothing"}`);
});

const shutdown = async () => {
  controller.abort();
  await stack.stop();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
stopWithParent(() => void shutdown());
stack.process.once("exit", (code) => {
  if (!controller.signal.aborted) {
    console.error(`wrangler dev exited (${code}); stopping.`);
    process.exit(code ?? 1);
  }
});

if (demo) {
  setInterval(() => {
    console.log(`demo: ${sent} events sent${failed ? `, ${failed} in failed requests` : ""}`);
  }, 15_000).unref();
  await runDemoTraffic({
    baseUrl: stack.url,
    appSecret,
    ingestKey: DEV_INGEST_KEY,
    signal: controller.signal,
    onResult: (r) => (r.status === 200 ? (sent += r.events) : (failed += r.events)),
  });
}
