import type { IngestMix } from "../schema/api.ts";
import type { NotificationEvent } from "../schema/event.ts";

/**
 * What an object's ingest traffic has been since it started, for the operator who decides the cost
 * model's open question (docs/capacity.md): how many statuses a webhook call carries, how often a
 * client's calls meet and share a commit, and the rows written per event that follow. Kept in
 * memory: counting durably would write rows of its own on every call, the very cost it measures, so
 * the figures start again with the object (a deploy; an eviction after a minute or two idle). A busy
 * object, the one whose mix matters, lives long.
 */
export class IngestTally {
  private readonly mix: IngestMix = {
    since: Date.now(),
    commits: 0,
    rows_written: 0,
    whatsapp: { calls: 0, events: 0, accepted: 0 },
    kafka: { calls: 0, events: 0, accepted: 0 },
  };

  /**
   * A committed group: each call's statuses and its result (how many were new), and the rows written
   * since the previous group (its own and the flushes').
   */
  committed(calls: readonly { events: NotificationEvent[] }[], results: readonly { accepted: number }[], rowsWritten: number): void {
    this.mix.commits++;
    this.mix.rows_written += rowsWritten;
    for (let i = 0; i < calls.length; i++) {
      const { events } = calls[i]!;
      // A call is one request's events for this client: one source (the Worker's webhook or bridge route).
      const source = events[0]?.source;
      if (!source) continue;
      const counts = this.mix[source];
      counts.calls++;
      counts.events += events.length;
      counts.accepted += results[i]!.accepted;
    }
  }

  figures(): IngestMix {
    return structuredClone(this.mix);
  }
}
