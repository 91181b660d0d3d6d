import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { counterOf } from "../../durable-objects/client-shards.ts";

/**
 * Fault injection for the invariant tests, through the seams the code provides: the lake flush's
 * replaceable bucket (durable-objects/lake-flush.ts) and the Worker's env (a wrapped D1 binding).
 */

/** Counts what the injected faults actually broke, for the report. */
export const injected = { r2PutsFailed: 0, d1CallsFailed: 0 };

/** Proxies `target`, replacing the methods named in `faulty` while `on()` says so. */
function withFaults<T extends object>(target: T, faulty: (keyof T)[], on: () => boolean, count: () => void, what: string): T {
  return new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop) as unknown;
      if (typeof v !== "function") return v;
      if (faulty.includes(prop as keyof T) && on()) {
        return () => {
          count();
          return Promise.reject(new Error(`injected ${what} outage`));
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(t);
    },
  });
}

/**
 * Makes every R2 put of a client's lake flush fail until `restore` is called or the object is
 * evicted (a fresh instance binds the real bucket again).
 */
export async function breakLakeFlush(clientId: string): Promise<() => void> {
  const stub = counterOf(env, clientId);
  let down = true;
  await runInDurableObject(stub, (instance) => {
    const lake = (instance as unknown as { lake: { bucket: R2Bucket } }).lake;
    lake.bucket = withFaults(lake.bucket, ["put"], () => down, () => (injected.r2PutsFailed += 1), "R2");
  });
  return () => {
    down = false;
  };
}

/** The test's env with a D1 whose batches (the billing commit) and reads fail while `down` is set. */
export function envWithFlakyD1(): { env: Env; setDown: (down: boolean) => void } {
  let down = false;
  const d1 = withFaults(env.DB, ["batch", "exec"], () => down, () => (injected.d1CallsFailed += 1), "D1");
  return { env: { ...env, DB: d1 }, setDown: (d) => (down = d) };
}
