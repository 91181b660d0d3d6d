import { z } from "zod";
import { ClientId } from "./event.ts";
import { absentOrNull, MinuteCounts, StatusCounts } from "./api.ts";
import { MINUTE_MS, minuteOf } from "./time.ts";

/** Server → browser messages on `/v1/clients/:id/live`, tagged by `type`. */
export const ClientLiveMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("snapshot"), client_id: ClientId, minutes: z.array(MinuteCounts), today: StatusCounts }),
  z.object({ type: z.literal("update"), client_id: ClientId, minutes: z.array(MinuteCounts), today: StatusCounts }),
]);
export type ClientLiveMessage = z.infer<typeof ClientLiveMessage>;

/** Minutes in the overview's rolling window ("last 60 minutes", including the current one). */
export const HOUR_MINUTES = 60;

/**
 * How long after each minute starts the overview sends every row again while someone watches, so
 * "this minute" and "last hour" move without events: late enough that the minute's first rollups
 * are in.
 */
export const MINUTE_TICK_DELAY_MS = 1_000;

/** The first minute (epoch ms) of the rolling hour that ends with the minute of `now`. */
export function hourStart(now: number): number {
  return minuteOf(now) - (HOUR_MINUTES - 1) * MINUTE_MS;
}

/** One client's row in the overview. */
export const OverviewRow = z.object({
  client_id: ClientId,
  name: z.string(),
  minute: StatusCounts,
  hour: StatusCounts,
  today: StatusCounts,
  /** Events per minute over the last hour, oldest first, ending with the current minute (for a sparkline). */
  spark: z.array(z.number().int()).length(HOUR_MINUTES).optional(),
});
export type OverviewRow = z.infer<typeof OverviewRow>;

/** Server → browser messages on `/v1/live`. */
export const OverviewLiveMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("snapshot"), clients: z.array(OverviewRow) }),
  z.object({ type: z.literal("update"), clients: z.array(OverviewRow) }),
]);
export type OverviewLiveMessage = z.infer<typeof OverviewLiveMessage>;

/** A ticket is good for one connection within this long (DESIGN.md: one use, ≤ 60 s). */
export const TICKET_TTL_MS = 60_000;

/** `POST /v1/live/ticket`: a ticket for one client's stream, or for the overview when `client_id` is absent. */
export const LiveTicketRequest = z.object({ client_id: absentOrNull(ClientId) });
export const LiveTicket = z.object({ ticket: z.string(), expires_at: z.number().int().describe("when the ticket stops working, epoch ms") });
export type LiveTicket = z.infer<typeof LiveTicket>;
/** An empty `ticket=` is a ticket like any other unknown one (401), not a malformed query. */
export const LiveQuery = z.object({ ticket: z.string().max(128).optional() });
