/**
 * One rewrite of a client's lake at a time in its shard 0: a compaction and a recipient's erasure of
 * the same day, run side by side, would each write a file from the same small files and delete
 * them, and the erasure's rewrite could be superseded by the compaction's file that still holds the
 * recipient. The runtime runs one alarm at a time, but an operator's compaction
 * (`POST /v1/admin/lake/compact`) and an alarm run by hand (`runDurableObjectAlarm`) come beside it.
 */
export class LakeTurns {
  private running: Promise<void> = Promise.resolve();

  /** Runs `job` after the runs before it, whether they failed or not. */
  inTurn<T>(job: () => Promise<T>): Promise<T> {
    const run = this.running.then(job);
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
