import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { deadLetterMessage } from "../../scripts/bridge/dead-letter.ts";
import { recordText, type ConsumerPort, type DeadLetter, type DeadLetterPort, type SourceBatch } from "../../scripts/bridge/ports.ts";

/**
 * An in-process stand-in for the Kafka broker (no broker or Docker exists on these machines), built to
 * behave as Kafka does towards a group consumer: partitioned logs with offsets, committed offsets per
 * group, eager rebalances that wait for batches in flight (as kafkajs does) and fail heartbeats while
 * they are pending, members fenced after a crash (their commits rejected), and every new owner reading
 * from the group's last committed offset, so what was not committed is delivered again. A batch handler
 * that throws ends its member, the worst kafkajs does with such an error.
 */

/** Keys and values are produced as text (UTF-8) or as bytes, and consumed as kafkajs' are (`recordText`). */
export interface StoredMessage {
  offset: string;
  key: string | Buffer | null;
  value: string | Buffer | null;
  headers: Record<string, string>;
}

/** Kafka's "rebalance in progress" / "unknown member" answers, as errors. */
export class GroupError extends Error {}

export interface CommitEntry {
  member: string;
  partition: number;
  offset: string;
}

function hashKey(key: string | Buffer): number {
  let h = 0;
  for (const byte of Buffer.from(key)) h = (Math.imul(h, 31) + byte) | 0;
  return Math.abs(h);
}

const consumed = (v: string | Buffer | null) => (typeof v === "string" ? v : recordText(v));

export class MemoryKafka {
  private readonly topics = new Map<string, StoredMessage[][]>();
  private readonly groups = new Map<string, Group>();
  private waiters = new Set<() => void>();

  createTopic(name: string, partitions: number): void {
    if (!this.topics.has(name)) this.topics.set(name, Array.from({ length: partitions }, () => []));
  }

  partitions(topic: string): StoredMessage[][] {
    const t = this.topics.get(topic);
    if (!t) throw new Error(`unknown topic ${topic}`);
    return t;
  }

  /** Appends messages; like Kafka's default partitioner, the same key always lands in the same partition. */
  produce(topic: string, messages: { key: string | Buffer | null; value: string | Buffer | null; headers?: Record<string, string>; partition?: number }[]): void {
    this.createTopic(topic, 1);
    const parts = this.partitions(topic);
    let roundRobin = 0;
    for (const m of messages) {
      const p = m.partition ?? (m.key === null ? roundRobin++ % parts.length : hashKey(m.key) % parts.length);
      const log = parts[p]!;
      log.push({ offset: String(log.length), key: m.key, value: m.value, headers: m.headers ?? {} });
    }
    const waiting = this.waiters;
    this.waiters = new Set();
    for (const wake of waiting) wake();
  }

  /** Every message of a topic, in partition then offset order. */
  messages(topic: string): StoredMessage[] {
    return this.topics.has(topic) ? this.partitions(topic).flat() : [];
  }

  group(id: string, topic: string): Group {
    let g = this.groups.get(id);
    if (!g) this.groups.set(id, (g = new Group(this, topic)));
    return g;
  }

  consumer(opts: { group: string; topic: string; maxBatch?: number }): MemoryConsumer {
    return new MemoryConsumer(this, this.group(opts.group, opts.topic), opts.topic, opts.maxBatch ?? 100);
  }

  /** A producer for the dead-letter topic. `failures` makes the next sends fail (topic unavailable). */
  deadLetters(topic: string): DeadLetterPort & { failures: number } {
    const port = {
      failures: 0,
      send: async (letters: DeadLetter[]) => {
        if (port.failures > 0) {
          port.failures -= 1;
          throw new Error("NOT_ENOUGH_REPLICAS");
        }
        this.produce(topic, letters.map(deadLetterMessage));
      },
    };
    return port;
  }

  /** Resolves at the next produce (or earlier through `wake`). */
  waitForData(): { promise: Promise<void>; wake: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    this.waiters.add(wake);
    return { promise, wake };
  }
}

export class Group {
  readonly committed = new Map<number, bigint>();
  /** Every accepted commit, to check that nothing is committed twice or backwards. */
  readonly commitLog: CommitEntry[] = [];
  /** Commits the group refused (fenced or stale members). */
  readonly refusedCommits: (CommitEntry & { reason: string })[] = [];
  /** The next commits fail with these errors, as kafkajs hands them over (a rebalance wrapped as non-retriable). */
  readonly commitFailures: Error[] = [];
  members: MemoryConsumer[] = [];
  generation = 0;
  rebalancing = false;
  private queue: Promise<void> = Promise.resolve();
  private readonly kafka: MemoryKafka;
  readonly topic: string;

  constructor(kafka: MemoryKafka, topic: string) {
    this.kafka = kafka;
    this.topic = topic;
  }

  /** Lag of the group: log end minus committed offset, summed over partitions. */
  lag(): number {
    return this.kafka.partitions(this.topic).reduce((sum, log, p) => sum + log.length - Number(this.committed.get(p) ?? 0n), 0);
  }

  /** Eager rebalance: every member gives up its partitions (finishing batches in flight), then all are reassigned. */
  rebalance(): Promise<void> {
    this.queue = this.queue.then(async () => {
      this.rebalancing = true;
      await Promise.all(this.members.map((m) => m.revokeAll()));
      this.generation += 1;
      const live = this.members.filter((m) => m.state === "running");
      const count = this.kafka.partitions(this.topic).length;
      live.forEach((m, i) => {
        const mine = Array.from({ length: count }, (_, p) => p).filter((p) => p % live.length === i);
        m.assign(mine, this.generation);
      });
      this.rebalancing = false;
    });
    return this.queue;
  }

  commit(member: MemoryConsumer, partition: number, nextOffset: string): void {
    const injected = this.commitFailures.shift();
    if (injected) {
      this.refusedCommits.push({ member: member.id, partition, offset: nextOffset, reason: injected.message });
      throw injected;
    }
    const reason = !this.members.includes(member)
      ? "UNKNOWN_MEMBER_ID: this member left or was fenced"
      : member.generation !== this.generation
        ? "ILLEGAL_GENERATION: the group rebalanced"
        : !member.owns(partition)
          ? `NOT_ASSIGNED: partition ${partition}`
          : null;
    if (reason) {
      this.refusedCommits.push({ member: member.id, partition, offset: nextOffset, reason });
      throw new GroupError(reason);
    }
    this.committed.set(partition, BigInt(nextOffset));
    this.commitLog.push({ member: member.id, partition, offset: nextOffset });
  }
}

let memberSeq = 0;

export class MemoryConsumer implements ConsumerPort {
  readonly id = `member-${++memberSeq}`;
  state: "idle" | "running" | "stopping" | "stopped" | "crashed" = "idle";
  generation = -1;
  private readonly kafka: MemoryKafka;
  private readonly group: Group;
  private readonly topic: string;
  private readonly maxBatch: number;
  private assigned = new Set<number>();
  private revoking = false;
  private loops: Promise<void>[] = [];
  private readonly wakers = new Set<() => void>();
  private onBatch: ((batch: SourceBatch) => Promise<void>) | undefined;
  private onAssigned: ((partitions: { topic: string; partition: number }[]) => void) | undefined;
  /** Heartbeats this member sent. */
  heartbeats = 0;
  /** Batches handed out and not yet finished. */
  readonly inFlight = new Set<Promise<void>>();
  /** What an onBatch threw: kafkajs ends the consumer on such an error when it is not retriable. */
  crashedWith: unknown;

  constructor(kafka: MemoryKafka, group: Group, topic: string, maxBatch: number) {
    this.kafka = kafka;
    this.group = group;
    this.topic = topic;
    this.maxBatch = maxBatch;
  }

  async run(onBatch: (batch: SourceBatch) => Promise<void>, onAssigned: (partitions: { topic: string; partition: number }[]) => void): Promise<void> {
    this.onBatch = onBatch;
    this.onAssigned = onAssigned;
    this.state = "running";
    this.group.members.push(this);
    await this.group.rebalance();
  }

  /** Clean stop: finish batches in flight (they may still commit), then leave the group. */
  async stop(): Promise<void> {
    if (this.state !== "running") return;
    this.state = "stopping";
    this.wakeAll();
    await Promise.all(this.loops);
    this.group.members = this.group.members.filter((m) => m !== this);
    this.state = "stopped";
    await this.group.rebalance();
  }

  /** The process died: its work in flight is lost, its commits are refused, the others take over. */
  crash(): Promise<void> {
    if (this.state === "crashed") return Promise.resolve();
    this.state = "crashed";
    this.group.members = this.group.members.filter((m) => m !== this);
    this.wakeAll();
    return this.group.rebalance();
  }

  /** Still the owner: also while a rebalance waits for this member's batches (Kafka accepts those commits). */
  owns(partition: number): boolean {
    return this.assigned.has(partition) && (this.state === "running" || this.state === "stopping");
  }

  assignedPartitions(): number[] {
    return [...this.assigned].sort((a, b) => a - b);
  }

  async revokeAll(): Promise<void> {
    this.revoking = true;
    this.wakeAll();
    await Promise.all(this.loops);
    this.loops = [];
    this.assigned.clear();
    this.revoking = false;
  }

  assign(partitions: number[], generation: number): void {
    this.generation = generation;
    this.assigned = new Set(partitions);
    this.onAssigned?.(partitions.map((partition) => ({ topic: this.topic, partition })));
    this.loops = partitions.map((p) => this.fetchLoop(p, generation));
  }

  private wakeAll(): void {
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  private fetching(partition: number, generation: number): boolean {
    return this.state === "running" && !this.revoking && this.generation === generation && this.assigned.has(partition);
  }

  /** kafkajs' fetch loop for one partition: next batch only after the previous one was handled. */
  private async fetchLoop(partition: number, generation: number): Promise<void> {
    let position = this.group.committed.get(partition) ?? 0n;
    while (this.fetching(partition, generation)) {
      const log = this.kafka.partitions(this.topic)[partition]!;
      if (position >= BigInt(log.length)) {
        const { promise, wake } = this.kafka.waitForData();
        this.wakers.add(wake);
        await promise;
        continue;
      }
      const messages = log.slice(Number(position), Number(position) + this.maxBatch);
      let resolved = position;
      const batch: SourceBatch = {
        topic: this.topic,
        partition,
        highWatermark: String(log.length),
        records: messages.map((m) => ({ topic: this.topic, partition, offset: m.offset, key: consumed(m.key), value: consumed(m.value) })),
        commit: async (nextOffset) => {
          this.group.commit(this, partition, nextOffset);
          resolved = BigInt(nextOffset);
        },
        heartbeat: async () => {
          this.heartbeats += 1;
          if (this.state === "crashed") throw new GroupError("UNKNOWN_MEMBER_ID: this member was fenced");
          if (this.group.rebalancing) throw new GroupError("REBALANCE_IN_PROGRESS");
        },
        // kafkajs' isRunning turns false as soon as a stop begins, before batches in flight have finished.
        isActive: () => this.state === "running" && this.generation === generation && this.group.members.includes(this),
      };
      const handling = this.onBatch!(batch).catch((e: unknown) => {
        // The bridge must never throw into the consumer: model the worst case, kafkajs crashing.
        this.crashedWith = e;
        void this.crash();
      });
      this.inFlight.add(handling);
      await handling;
      this.inFlight.delete(handling);
      if (this.state === "crashed") return;
      // Like kafkajs with nothing resolved: what was not committed is fetched again.
      position = resolved;
      await yieldToEventLoop();
    }
  }
}
