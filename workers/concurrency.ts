/**
 * Maps `items` through `fn` with at most `limit` calls in flight, keeping order. A sliding window:
 * a slow call holds one slot, not a whole slice of the others.
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** What `within` rejects with when its time ran out, so a caller can tell it from the promise's own failure. */
export class TookTooLong extends Error {}

/** `promise`, or a TookTooLong naming `what` once `ms` pass without it settling (it runs on, unheard). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TookTooLong(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, expired]).finally(() => {
    if (timer) clearTimeout(timer);
  });
}
