/**
 * An object at (or near) Cloudflare's 10 GB per-object limit. Past it, SQLite refuses writes with
 * "database or disk is full: SQLITE_FULL" while reads and deletes still work (workerd's sqlite.c++;
 * cloudflare/cloudflare-docs#29058). Local workerd neither enforces the limit nor lets a test cap
 * max_page_count, so the fault is modelled by wrapping the object's `sql.exec`: a statement that
 * allocates (CREATE, INSERT, UPDATE, REPLACE, WITH) throws SQLite's message while the object is
 * full; SELECT, DELETE and DROP go through.
 */
import { runInDurableObject } from "cloudflare:test";
import type { ClientCounter } from "../../durable-objects/client-counter.ts";

export const FULL = "database or disk is full: SQLITE_FULL";

export interface Fullness {
  full: boolean;
  /** When given, the statements refused, as their first three words. */
  refused?: string[];
  /** DROPs of these tables free the space, as the real database's would; none when absent. */
  freedBy?: RegExp;
}

/** Makes the object's storage refuse allocating writes while `state.full`. */
export async function fillUp(stub: DurableObjectStub<ClientCounter>, state: Fullness): Promise<void> {
  await runInDurableObject(stub, (_i, s) => {
    const sql = s.storage.sql;
    const real = sql.exec.bind(sql);
    (sql as unknown as { exec: unknown }).exec = (query: string, ...args: unknown[]) => {
      const q = query.trimStart().toUpperCase().replace(/\s+/g, " ");
      if (state.full && /^(CREATE|INSERT|UPDATE|REPLACE|WITH)/.test(q)) {
        state.refused?.push(q.split(" ").slice(0, 3).join(" "));
        throw new Error(FULL);
      }
      const out = real(query, ...(args as never[]));
      if (state.freedBy?.test(q)) state.full = false;
      return out;
    };
  });
}
