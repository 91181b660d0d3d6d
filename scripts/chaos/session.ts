import { DEV_INGEST_KEY, DEV_PASSWORD } from "../../schema/dev-credentials.ts";
import { rmSync } from "node:fs";
import { deliveryPlan, toRequest, type Credentials, type Delivery } from "../../test/ground-truth/delivery.ts";
import { billingLeg, countersLeg, lakeLeg, type Api, type Difference } from "../../test/ground-truth/invariant.ts";
import { groundTruth, type GroundTruth, type TruthClient } from "../../test/ground-truth/model.ts";
import { devVar } from "../dev-vars.ts";
import { freePort, prepareLocalState, startWrangler, type RunningStack } from "../local-stack.ts";

/**
 * A chaos session: a real `wrangler dev` on persisted local state, the seeded dev credentials, fresh
 * clients for the ground truth, and an at-least-once sender that survives the stack going away.
 */

const TIMEZONES = ["America/Sao_Paulo", "Asia/Kolkata", "UTC"];

/** The stack the sender talks to; replaced on restart, `ready` pending while it is down. */
export class Target {
  base = "";
  stack: RunningStack | null = null;
  ready: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;
  readonly stateDir: string;

  // No parameter property: Node runs this file by stripping types, which does not support them.
  constructor(stateDir: string) {
    this.stateDir = stateDir;
  }

  async start(): Promise<void> {
    this.stack = await startWrangler({ port: await freePort(), persistTo: this.stateDir, log: process.env.CHAOS_LOG ? "inherit" : "ignore" });
    this.base = this.stack.url;
    this.release();
  }

  /** Stops the stack and deletes its state directory. */
  async close(): Promise<void> {
    await this.stack?.stop();
    rmSync(this.stateDir, { recursive: true, force: true });
  }

  /** Marks the stack down: senders wait for the next `start()`. */
  down(): void {
    this.ready = new Promise((r) => (this.release = r));
  }

  api: Api = (path, init) => fetch(`${this.base}${path}`, init);
}

/** Prepares fresh state in `stateDir` and starts the stack on it. */
export async function openTarget(stateDir: string): Promise<Target> {
  await prepareLocalState(stateDir);
  const target = new Target(stateDir);
  await target.start();
  return target;
}

async function ok<T>(res: Response, what: string, status = 200): Promise<T> {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export interface Session {
  truth: GroundTruth;
  deliveries: Delivery[];
  copies: number;
  creds: Credentials;
  token: string;
}

/** Signs in as the seeded admin, creates one client per time zone (the last of 3 shards), and draws the truth from `seed`. */
export async function openSession(target: Target, seed: number, messagesPerClient: number): Promise<Session> {
  const { token } = await ok<{ token: string }>(
    await target.api("/v1/auth/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "admin@example.com", password: DEV_PASSWORD }),
    }),
    "login",
  );
  const clients: TruthClient[] = [];
  for (const [i, timezone] of TIMEZONES.entries()) {
    const id = `chaos-${seed}-${i}`;
    const phoneNumberId = `9${seed}${i}`;
    await ok(
      await target.api("/v1/admin/clients", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        // The last client is sharded, so kills and restarts hit a message's shard and the reads that sum them.
        body: JSON.stringify({ id, name: `Chaos ${i}`, timezone, phone_number_ids: [phoneNumberId], shards: i === TIMEZONES.length - 1 ? 3 : 1 }),
      }),
      `create ${id}`,
      201,
    );
    clients.push({ id, timezone, phoneNumberId });
  }
  // Three days that closed a few days ago, so every billing day can be run at the end.
  const startDay = new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10);
  const truth = groundTruth({ seed, clients, startDay, spanDays: 3, messagesPerClient });
  const { deliveries, stats } = deliveryPlan(truth);
  const phones = new Map(clients.map((c) => [c.id, c.phoneNumberId]));
  const creds: Credentials = { appSecret: devVar("WHATSAPP_APP_SECRET"), ingestKey: DEV_INGEST_KEY, phoneOf: (id) => phones.get(id)! };
  return { truth, deliveries, copies: stats.copies, creds, token };
}

export interface SendStats {
  requests: number;
  /** Attempts that did not get a 200 (connection lost, 429/503) and were sent again. */
  resent: number;
  /** Why attempts were sent again: "connection" or the HTTP status and error code. */
  resentBecause: Record<string, number>;
  /** Answers that were neither 200 nor a retryable 429/503. */
  errors: string[];
}

/**
 * Sends one delivery until it is acknowledged, as a real at-least-once sender does: a lost
 * connection waits for the stack to come back; 429/503 are retried; anything else is an error.
 */
export async function deliver(target: Target, session: Session, d: Delivery, stats: SendStats): Promise<void> {
  const req = await toRequest(d, session.creds);
  for (;;) {
    await target.ready;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${target.base}${req.path}`, { ...req.init, signal: AbortSignal.timeout(60_000) });
      text = await res.text();
    } catch {
      // No answer (the stack died mid-request): not acknowledged, so it is sent again.
      stats.resent += 1;
      stats.resentBecause.connection = (stats.resentBecause.connection ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    if (res.status === 200) {
      stats.requests += 1;
      return;
    }
    if (res.status !== 429 && res.status !== 503) {
      stats.errors.push(`${req.path}: HTTP ${res.status} ${text.slice(0, 300)}`);
      return;
    }
    stats.resent += 1;
    const reason = `${res.status} ${/"code":"([a-z_]+)"/.exec(text)?.[1] ?? ""}`.trim();
    stats.resentBecause[reason] = (stats.resentBecause[reason] ?? 0) + 1;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every leg of the invariant, through the HTTP API of the running stack. */
export async function checkAll(target: Target, session: Session): Promise<Difference[]> {
  return [
    ...(await countersLeg(target.api, session.token, session.truth)),
    ...(await lakeLeg(target.api, session.token, session.truth)),
    ...(await billingLeg(target.api, session.token, session.truth)),
  ];
}
