import { Bridge, type BridgeFatal, type BridgeOptions } from "./core.ts";
import { progressLine } from "./progress.ts";
import type { ConsumerPort } from "./ports.ts";

export interface RunningBridge {
  bridge: Bridge;
  /** Drains and stops: in-flight requests finish, their batches commit, nothing else is committed, then the consumer leaves. */
  stop(): Promise<void>;
  /** Resolves after a stop, with the fatal error if a response stopped the bridge. */
  done: Promise<BridgeFatal | null>;
}

/**
 * Wires a consumer to the bridge core and prints a progress line every `progressSeconds` (0 = never).
 * Used by `npm run bridge` with kafkajs and by the tests with the in-process broker.
 */
export async function startBridge(
  consumer: ConsumerPort,
  options: Omit<BridgeOptions, "onFatal">,
  opts: { progressSeconds: number; print?: (line: string) => void },
): Promise<RunningBridge> {
  const print = opts.print ?? ((line: string) => console.error(line));
  let stopping: Promise<void> | undefined;
  let finish!: (fatal: BridgeFatal | null) => void;
  const done = new Promise<BridgeFatal | null>((resolve) => (finish = resolve));
  const bridge: Bridge = new Bridge({
    ...options,
    onFatal: (error) => {
      print(`bridge: stopping: ${error.message}`);
      void stop();
    },
  });

  let last = { at: Date.now(), snapshot: bridge.progress.snapshot() };
  let timer: ReturnType<typeof setInterval> | undefined;

  function stop(): Promise<void> {
    stopping ??= (async () => {
      clearInterval(timer);
      // The bridge first: its last commits need a running consumer (a stopping kafkajs skips them).
      await bridge.stop();
      await consumer.stop();
      const snapshot = bridge.progress.snapshot();
      print(`${progressLine(last.snapshot, snapshot, Date.now() - last.at)} · stopped`);
      finish(bridge.fatal);
    })();
    return stopping;
  }

  await consumer.run(bridge.handleBatch, bridge.assigned);
  if (opts.progressSeconds > 0 && !stopping) {
    timer = setInterval(() => {
      const now = Date.now();
      const snapshot = bridge.progress.snapshot();
      print(progressLine(last.snapshot, snapshot, now - last.at));
      last = { at: now, snapshot };
    }, opts.progressSeconds * 1000);
  }
  return { bridge, stop, done };
}
