/**
 * Records waiting to be posted, one buffer per Kafka key (the client id by convention), and how they are
 * packed into requests. The endpoint makes one Durable Object call per client per request, so a key's
 * records stay together in one request; several keys share a request, so that many small keys do not
 * each cost a request.
 */

export interface Sized {
  /** UTF-8 bytes this item adds to a request body. */
  bytes: number;
}

interface KeyBuffer<T> {
  items: T[];
  bytes: number;
}

export class KeyBuffers<T extends Sized> {
  private readonly partial = new Map<string, KeyBuffer<T>>();
  /** Buffers that reached a cap on their own, in the order they did: each is a request as it stands. */
  private readonly full: T[][] = [];
  private readonly maxRecords: number;
  /** What the items' bytes may add up to: a body is `[` + items joined by commas + `]`, one byte more. */
  private readonly maxItemBytes: number;

  constructor(limits: { maxRecords: number; maxBytes: number }) {
    this.maxRecords = limits.maxRecords;
    this.maxItemBytes = limits.maxBytes - 1;
  }

  add(key: string, item: T): void {
    let buf = this.partial.get(key);
    if (buf && buf.bytes + item.bytes > this.maxItemBytes) {
      this.full.push(buf.items);
      this.partial.delete(key);
      buf = undefined;
    }
    if (!buf) this.partial.set(key, (buf = { items: [], bytes: 0 }));
    buf.items.push(item);
    buf.bytes += item.bytes;
    // A lone item over the byte cap goes alone: the endpoint's 413 then decides its fate.
    if (buf.items.length >= this.maxRecords || buf.bytes >= this.maxItemBytes) {
      this.full.push(buf.items);
      this.partial.delete(key);
    }
  }

  get hasPartial(): boolean {
    return this.partial.size > 0;
  }

  /**
   * The next request: a full buffer first; else, when `withPartial`, whole partial buffers taken in
   * arrival order while they fit under both caps (one that does not fit waits for a later request).
   * Undefined when nothing may go.
   */
  next(withPartial: boolean): T[] | undefined {
    const full = this.full.shift();
    if (full) return full;
    if (!withPartial || this.partial.size === 0) return undefined;
    const request: T[] = [];
    let bytes = 0;
    for (const [key, buf] of this.partial) {
      if (request.length + buf.items.length > this.maxRecords || bytes + buf.bytes > this.maxItemBytes) continue;
      request.push(...buf.items);
      bytes += buf.bytes;
      this.partial.delete(key);
    }
    return request;
  }

  /** Empties every buffer and returns what was waiting. */
  takeAll(): T[] {
    const all = [...this.full.flat(), ...[...this.partial.values()].flatMap((b) => b.items)];
    this.full.length = 0;
    this.partial.clear();
    return all;
  }
}
