/**
 * A hot client, sharded or not: the webhook workload (1–10 statuses, 16 in flight) aimed at one
 * client of one shard and at one of HOT_SHARDS shards, in alternating windows, with live-latency
 * probes meanwhile on another client of the same shard count (the probes count their own events on
 * the screen, so their client gets nothing else). Locally every object runs on the one workerd
 * thread, so this shows what sharding costs a request (a call per shard its statuses belong to) and
 * whether the summed live view keeps its latency, not the per-object headroom it buys in production.
 */
import { benchClientId, benchPhone } from "./events.ts";
import { ingestFigures, ingestRound, warmUp, workload, type IngestFigures, type IngestRound } from "./ingest.ts";
import type { BenchStack } from "./stack.ts";
import { ratio } from "./stats.ts";
import { latencyFigures, probeLiveLatency, type LatencyFigures, type LatencySample } from "./ws-latency.ts";

export const HOT_SHARDS = 4;

/** Clients by index, created without phones by the stack's seed: given one and their shard count here. */
const VARIANTS = [
  { name: "one_shard", client: 1_004, probe: 1_006, shards: 1 },
  { name: "sharded", client: 1_005, probe: 1_007, shards: HOT_SHARDS },
] as const;

type Variant = (typeof VARIANTS)[number]["name"];
export type HotClientResult = Record<Variant, IngestFigures & { shards: number; ws_latency: LatencyFigures }> & { sharded_vs_one_shard_events_per_s: number | null };

/** Gives a client its phone number and shard count through the admin API, as an operator would. */
async function configure(stack: BenchStack, client: number, shards: number): Promise<void> {
  const res = await fetch(`${stack.url}/v1/admin/clients/${benchClientId(client)}`, {
    method: "PATCH",
    headers: { "content-type": "application/json", authorization: `Bearer ${stack.token}` },
    body: JSON.stringify({ shards, phone_number_ids: [benchPhone(client)] }),
  });
  if (res.status !== 200) throw new Error(`configuring ${benchClientId(client)}: ${res.status} ${await res.text()}`);
}

export async function benchHotClient(stack: BenchStack, o: { run: string; windowMs: number; rounds: number; probeIntervalMs: number }): Promise<HotClientResult> {
  for (const v of VARIANTS) for (const client of [v.client, v.probe]) await configure(stack, client, v.shards);
  const windows = new Map<Variant, IngestRound[]>(VARIANTS.map((v) => [v.name, []]));
  const probes = new Map<Variant, LatencySample[]>(VARIANTS.map((v) => [v.name, []]));
  const optionsOf = (v: (typeof VARIANTS)[number], i: number) => ({
    ...workload("webhook", { run: `${o.run}-${v.name}${i}`, durationMs: o.windowMs, maxRequests: 10_000_000 }),
    clients: [v.client],
  });
  for (let i = 0; i < o.rounds; i++) {
    for (const v of VARIANTS) {
      const opts = optionsOf(v, i);
      await warmUp(stack, opts);
      let done = false;
      const probe = probeLiveLatency(stack, { client: v.probe, run: `${o.run}-p${v.name}${i}`, intervalMs: o.probeIntervalMs, maxProbes: 10_000, until: () => done });
      windows.get(v.name)!.push(await ingestRound(stack, opts).finally(() => (done = true)));
      probes.get(v.name)!.push(await probe);
    }
  }
  const figures = (v: (typeof VARIANTS)[number]) => ({
    ...ingestFigures(optionsOf(v, 0), windows.get(v.name)!),
    shards: v.shards,
    ws_latency: latencyFigures(probes.get(v.name)!),
  });
  const one = figures(VARIANTS[0]);
  const sharded = figures(VARIANTS[1]);
  return { one_shard: one, sharded, sharded_vs_one_shard_events_per_s: ratio(sharded.events_per_s, one.events_per_s) };
}
