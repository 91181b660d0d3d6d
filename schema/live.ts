import { z } from "zod";
import { ClientId } from "./event.ts";
import { MinuteCounts, StatusCounts } from "./api.ts";

/** Server → browser messages on `/v1/clients/:id/live`, tagged by `type`. */
export const ClientLiveMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("snapshot"), client_id: ClientId, minutes: z.array(MinuteCounts), today: StatusCounts }),
  z.object({ type: z.literal("update"), client_id: ClientId, minutes: z.array(MinuteCounts), today: StatusCounts }),
]);
export type ClientLiveMessage = z.infer<typeof ClientLiveMessage>;

/** One client's row in the overview. */
export const OverviewRow = z.object({
  client_id: ClientId,
  name: z.string(),
  minute: StatusCounts,
  hour: StatusCounts,
  today: StatusCounts,
});
export type OverviewRow = z.infer<typeof OverviewRow>;

/** Server → browser messages on `/v1/live`. */
export const OverviewLiveMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("snapshot"), clients: z.array(OverviewRow) }),
  z.object({ type: z.literal("update"), clients: z.array(OverviewRow) }),
]);
export type OverviewLiveMessage = z.infer<typeof OverviewLiveMessage>;
