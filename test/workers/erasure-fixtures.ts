import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import type { Erasure } from "../../schema/api.ts";
import { admin, authed, call, postJson } from "./helpers.ts";

/** `POST /v1/admin/clients/:id/erasures` (as an admin unless `token` is given). */
export async function askErasure(clientId: string, recipient: unknown, token?: string): Promise<Response> {
  return postJson(`/v1/admin/clients/${encodeURIComponent(clientId)}/erasures`, { recipient }, token ?? (await admin()));
}

/** `GET /v1/admin/clients/:id/erasures/:erasure_id` (as an admin unless `token` is given). */
export async function getErasure(clientId: string, id: string, token?: string): Promise<Response> {
  return call(`/v1/admin/clients/${encodeURIComponent(clientId)}/erasures/${encodeURIComponent(id)}`, authed(token ?? (await admin())));
}

/** The erasure's state as an admin reads it. */
export async function erasureState(clientId: string, id: string): Promise<Erasure> {
  const res = await getErasure(clientId, id);
  expect(res.status).toBe(200);
  return (await res.json()) as Erasure;
}

/**
 * Runs the client's shard-0 alarm (the runtime may run it too) until the erasure is done, or, with
 * `untilFailed`, until a try failed more times than `failures`: it then waits for its retry.
 */
export async function settleErasure(clientId: string, id: string, untilFailed?: { failures: number }): Promise<Erasure> {
  await vi.waitFor(
    async () => {
      await runDurableObjectAlarm(counterOf(env, clientId));
      const e = await erasureState(clientId, id);
      expect(untilFailed ? e.failures > untilFailed.failures : e.status === "done").toBe(true);
    },
    { timeout: 20_000, interval: 50 },
  );
  return erasureState(clientId, id);
}
