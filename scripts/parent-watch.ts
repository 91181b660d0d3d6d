/**
 * Calls `stop` once this process's parent is gone: `kill <npm's pid>` ends npm and its shell without
 * signalling the script they started, which would run on, re-parented to init (a bridge consuming
 * and committing offsets nobody watches, a stack holding its port).
 */
export function stopWithParent(stop: () => void): void {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    stop();
  }, 1_000);
  watch.unref();
}
