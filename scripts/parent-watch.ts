/**
 * The parent this process started under, read when the script loads: read later (after a startup
 * that can take minutes), it may be init already, and a parent that died in between goes unnoticed.
 */
const parent = process.ppid;

/**
 * Calls `stop` once this process's parent is gone: `kill <npm's pid>` ends npm and its shell without
 * signalling the script they started, which would run on, re-parented to init (a bridge consuming
 * and committing offsets nobody watches, a stack holding its port).
 */
export function stopWithParent(stop: () => void): void {
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    stop();
  }, 1_000);
  watch.unref();
}
