/** Counters the bridge keeps for its progress line and for tests: what was delivered, refused, retried, and the lag. */
export interface ProgressSnapshot {
  /** Records the endpoint stored (accepted + duplicates). */
  delivered: number;
  duplicates: number;
  deadLettered: number;
  posts: number;
  retries: number;
  commits: number;
  /**
   * Sum over this member's partitions of log end offset - committed offset, the log end as of each
   * partition's last fetch: it stands still while a partition is stuck retrying (nothing is fetched).
   */
  lag: number;
}

export class Progress {
  delivered = 0;
  duplicates = 0;
  deadLettered = 0;
  posts = 0;
  retries = 0;
  commits = 0;
  private readonly partitions = new Map<string, { highWatermark: bigint; next: bigint }>();

  /** A fetched batch: the partition's end offset, and where reading starts when nothing was committed yet. */
  observe(topic: string, partition: number, highWatermark: string, firstOffset: string | undefined): void {
    const key = `${topic}/${partition}`;
    const p = this.partitions.get(key);
    const hw = BigInt(highWatermark);
    if (p) p.highWatermark = hw > p.highWatermark ? hw : p.highWatermark;
    else this.partitions.set(key, { highWatermark: hw, next: firstOffset === undefined ? hw : BigInt(firstOffset) });
  }

  /** Keeps only `partitions` (this member's assignment after a rebalance) in the lag. */
  retain(partitions: { topic: string; partition: number }[]): void {
    const kept = new Set(partitions.map((p) => `${p.topic}/${p.partition}`));
    for (const key of [...this.partitions.keys()]) if (!kept.has(key)) this.partitions.delete(key);
  }

  committed(topic: string, partition: number, nextOffset: string): void {
    this.commits += 1;
    const p = this.partitions.get(`${topic}/${partition}`);
    if (p) p.next = BigInt(nextOffset);
  }

  snapshot(): ProgressSnapshot {
    let lag = 0n;
    for (const p of this.partitions.values()) if (p.highWatermark > p.next) lag += p.highWatermark - p.next;
    const { delivered, duplicates, deadLettered, posts, retries, commits } = this;
    return { delivered, duplicates, deadLettered, posts, retries, commits, lag: Number(lag) };
  }
}

/** One human line: rate since the previous snapshot, totals, and lag. */
export function progressLine(prev: ProgressSnapshot, cur: ProgressSnapshot, elapsedMs: number): string {
  const rate = elapsedMs > 0 ? ((cur.delivered + cur.deadLettered - prev.delivered - prev.deadLettered) * 1000) / elapsedMs : 0;
  return (
    `bridge: ${rate.toFixed(0)} events/s · delivered ${cur.delivered} (${cur.duplicates} duplicates) · ` +
    `dead-lettered ${cur.deadLettered} · retries ${cur.retries} · lag ${cur.lag}`
  );
}
