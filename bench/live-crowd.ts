/**
 * A crowd of dashboards on the overview (`GET /v1/live`): what the overview's row latency becomes
 * when the Overview's top sends every update to many viewers, not to one. Each busy client gets a
 * viewer user who sees only that client, signed in once and holding `socketsPerUser` sockets (a
 * client's staff with the landing page open), so every update goes to a socket per tab of every
 * client it changed, each with its own scoped message.
 *
 * The sockets live in a worker thread (live-crowd-worker.ts): their thousands of messages a second
 * must not delay the probes' timestamps on the main thread.
 */
import { randomBytes } from "node:crypto";
import { Worker } from "node:worker_threads";
import { benchClientId } from "./events.ts";
import type { BenchStack } from "./stack.ts";
import { round } from "./stats.ts";

export interface CrowdPlan {
  /** Client indices: one viewer user each. */
  clients: number[];
  socketsPerUser: number;
}

/** What the crowd's sockets got while open. */
export interface CrowdFigures {
  viewers: number;
  users: number;
  messages: number;
  messages_per_s: number;
  bytes_per_s: number;
  /** Sockets that closed before the crowd was told to stop (should be 0). */
  closed_early: number;
  /**
   * How busy the crowd's own thread was (0–1): its sockets share the machine's two cores with the
   * stack, the load and the probes, so part of what the crowd costs the row is the harness's.
   */
  thread_busy: number;
}

/** What the worker thread is handed: where each socket goes. */
export interface CrowdSockets {
  urls: string[];
}

/** Main → worker: start counting now; report the counts so far; close the sockets and end. */
export type CrowdCommand = "count" | "report" | "close";
/** Worker → main: every socket has its first message; the counts since "count"; the sockets closed. */
export type CrowdReport = { ready: true } | { messages: number; bytes: number; closedEarly: number; elapsedMs: number; threadBusy: number } | { closed: true } | { error: string };

export interface Crowd {
  viewers: number;
  /** Starts the count (the load's window begins). */
  count(): void;
  /** What the sockets got since `count`; they stay open (updates still on their way go on to them). */
  figures(): Promise<CrowdFigures>;
  close(): Promise<void>;
}

/** The crowd's users, signed in: `open` takes the tickets and opens the sockets. */
export interface SignedInCrowd {
  open(): Promise<Crowd>;
}

/** Creates the users and signs each in (sessions last 8 hours): two PBKDF2 hashes each, so done before anything is timed. */
export async function signInCrowd(stack: BenchStack, plan: CrowdPlan): Promise<SignedInCrowd> {
  const run = randomBytes(4).toString("hex");
  const password = `crowd-${randomBytes(12).toString("base64url")}`;
  const admin = { "content-type": "application/json", authorization: `Bearer ${stack.token}` };
  const tokens: string[] = [];
  // A few at a time: each sign-up and sign-in is a hash on the stack's one thread.
  for (const slice of chunks(plan.clients, 4)) {
    await Promise.all(
      slice.map(async (client) => {
        const email = `crowd-${run}-${client}@example.com`;
        await expectOk(
          fetch(`${stack.url}/v1/admin/users`, { method: "POST", headers: admin, body: JSON.stringify({ email, password, role: "viewer", client_ids: [benchClientId(client)] }) }),
          "create viewer",
        );
        const { token } = (await expectOk(
          fetch(`${stack.url}/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email, password }) }),
          "sign in",
        )) as { token: string };
        tokens.push(token);
      }),
    );
  }
  return { open: () => openCrowd(stack, tokens, plan) };
}

/** Takes a ticket per socket and opens the sockets; resolves once each has had its snapshot. */
async function openCrowd(stack: BenchStack, tokens: string[], plan: CrowdPlan): Promise<Crowd> {
  const urls: string[] = [];
  for (const slice of chunks(tokens, 4)) {
    await Promise.all(
      slice.map(async (token) => {
        for (let s = 0; s < plan.socketsPerUser; s++) {
          const { ticket } = (await expectOk(
            fetch(`${stack.url}/v1/live/ticket`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: "{}" }),
            "live ticket",
          )) as { ticket: string };
          urls.push(`${stack.url.replace(/^http/, "ws")}/v1/live?ticket=${ticket}`);
        }
      }),
    );
  }
  const worker = new Worker(new URL("./live-crowd-worker.ts", import.meta.url), { workerData: { urls } satisfies CrowdSockets });
  const next = () =>
    new Promise<CrowdReport>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  const answer = async <K extends string>(command: CrowdCommand | null, key: K): Promise<Extract<CrowdReport, Record<K, unknown>>> => {
    const reply = next();
    if (command) worker.postMessage(command);
    const r = await reply;
    if ("error" in r) throw new Error(`crowd: ${r.error}`);
    if (!(key in r)) throw new Error(`crowd: expected ${key}, got ${JSON.stringify(r)}`);
    return r as Extract<CrowdReport, Record<K, unknown>>;
  };
  await answer(null, "ready");
  return {
    viewers: urls.length,
    count: () => worker.postMessage("count" satisfies CrowdCommand),
    async figures() {
      const r = await answer("report", "messages");
      const s = r.elapsedMs / 1000;
      return {
        viewers: urls.length,
        users: plan.clients.length,
        messages: r.messages,
        messages_per_s: round(r.messages / s),
        bytes_per_s: round(r.bytes / s),
        closed_early: r.closedEarly,
        thread_busy: round(r.threadBusy, 3),
      };
    },
    async close() {
      await answer("close", "closed");
      await worker.terminate();
    },
  };
}

async function expectOk(response: Promise<Response>, what: string): Promise<unknown> {
  const res = await response;
  if (res.status !== 200 && res.status !== 201) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return res.json();
}

function chunks<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}
