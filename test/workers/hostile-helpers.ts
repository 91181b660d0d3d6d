import { eventIdOf, eventKey, eventTablesIn } from "../../durable-objects/client-counter-tables.ts";
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { deadLetters } from "./helpers.ts";

/** What the hostile-input tests observe of the system: dead letters and a client's Durable Object. */

export type Letter = Awaited<ReturnType<typeof deadLetters>>[number];

/** Every dead letter's key and upload version. */
async function listDlq(): Promise<Map<string, string>> {
  const letters = new Map<string, string>();
  let cursor: string | undefined;
  do {
    const page = await env.LAKE.list({ prefix: "dlq/", cursor });
    for (const o of page.objects) letters.set(o.key, o.version);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return letters;
}

/** The dead letters now, to find the letters one request writes. */
export function dlqKeys(): Promise<Map<string, string>> {
  return listDlq();
}

/**
 * The letters written since `before`, parsed: new ones, and ones written again (a request whose
 * letter exists, as a retry's does, rewrites it under the same name).
 */
export async function lettersSince(before: Map<string, string>): Promise<Letter[]> {
  const written = [...(await listDlq())].filter(([key, version]) => before.get(key) !== version).map(([key]) => key);
  return Promise.all(written.map(async (key) => ({ key, body: JSON.parse(await (await env.LAKE.get(key))!.text()) as Letter["body"] })));
}

/** A client's durable state: the events (message_id, event_id: eventKey) its event tables hold and its counter totals. */
export async function counterState(clientId: string): Promise<{ seen: Set<string>; total: number }> {
  const seen = await runInDurableObject(counterOf(env, clientId), (_instance, state) => {
    const sql = state.storage.sql;
    return eventTablesIn(sql).flatMap((t) =>
      sql
        .exec<{ message_id: string; id: string }>(`SELECT message_id, ${t.idColumn} AS id FROM ${t.name}`)
        .toArray()
        .map((r) => eventKey(r.message_id, eventIdOf(r.message_id, r.id))),
    );
  });
  const totals = await counterOf(env, clientId).totals(0, Number.MAX_SAFE_INTEGER);
  return { seen: new Set(seen), total: Object.values(totals).reduce((a, b) => a + b, 0) };
}

/** A clear client error: a 4xx with the one error body shape. */
export async function expectClientError(res: Response, status?: number): Promise<{ code: string; message: string }> {
  const text = await res.text();
  if (status !== undefined) expect(res.status, text).toBe(status);
  expect(res.status, text).toBeGreaterThanOrEqual(400);
  expect(res.status, text).toBeLessThan(500);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  expect(body.error.code).toMatch(/^[a-z_]+$/);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}
