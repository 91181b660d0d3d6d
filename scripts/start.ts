import { buildPages } from "./dashboard-build.ts";
import { DEV_INGEST_KEY } from "./demo/catalog.ts";
import { runDemoTraffic } from "./demo/traffic.ts";
import { devVar } from "./dev-vars.ts";
import { localCrons, runLocalCrons, type Cron } from "./local-crons.ts";
import { assertPortFree, prepareLocalState, startWrangler, type RunningStack } from "./local-stack.ts";
import { stopWithParent } from "./parent-watch.ts";

/**
 * `npm start`: the whole local stack in one process tree — dashboard build, D1 migrations + dev seed,
 * wrangler dev (Worker, Durable Objects, local D1/R2) on PORT, its Cron Triggers on their schedule,
 * and demo traffic unless DEMO=0. Ctrl-C stops everything.
 */
const port = Number(process.env.PORT ?? 8787);
const demo = process.env.DEMO !== "0";

const controller = new AbortController();
let stack: RunningStack | undefined;
// Installed before wrangler dev is spawned: a Ctrl-C, a `kill` or npm going away while it starts
// (up to two minutes) must stop it too, else it runs on, holding the port.
const shutdown = async () => {
  controller.abort();
  // While it starts, startWrangler stops it on the abort and the startup below exits.
  if (!stack) return;
  await stack.stop();
  process.exit(0);
};
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
stopWithParent(() => void shutdown());

function fail(err: Error): never {
  console.error(`zapmeter: ${err.message}`);
  process.exit(1);
}
// Before anything touches the build or the local state another stack may be serving.
await assertPortFree(port).catch(fail);
// A cron the local trigger would fire otherwise than Cloudflare is refused before anything starts.
let crons: Cron[];
try {
  crons = localCrons();
} catch (err) {
  fail(err as Error);
}
console.log("zapmeter: building the dashboard…");
buildPages();
console.log("zapmeter: applying D1 migrations and seeding dev data…");
await prepareLocalState();
const appSecret = devVar("WHATSAPP_APP_SECRET");
console.log(`zapmeter: starting wrangler dev on port ${port}…`);
stack = await startWrangler({ port, log: process.env.VERBOSE === "1" ? "inherit" : "quiet", signal: controller.signal }).catch((err: Error) => {
  if (controller.signal.aborted) process.exit(0);
  throw err;
});

let sent = 0;
let failed = 0;
// wrangler listens on 127.0.0.1 alone; the banner names it as the README does, since a signed-in
// browser's cookie and Origin belong to the host it was opened on and the two are different origins.
const shownUrl = `http://localhost:${port}`;
console.log(`
zapmeter is up: ${shownUrl}
  dashboard   ${shownUrl}/        (admin@example.com / zapmeter-dev)
  API         ${shownUrl}/v1/openapi.json
  demo        ${demo ? "sending traffic for 50 clients (DEMO=0 to turn off)" : "off"}
  crons       fired on wrangler.toml's schedule (billing every 10 minutes, compaction, purge and expiry at 03:30 UTC)
Ctrl-C stops everything.
`);
runLocalCrons(stack.url, crons, controller.signal, (cron, status) => {
  if (status !== 200) console.error(`cron ${cron}: the local trigger answered ${status || "nothing"}`);
});

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
