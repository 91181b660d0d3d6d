import type { StatusCounts } from "../../schema/api.ts";

/*
 * The rates are of status counts in a window, not of messages: Meta sends no delivered for a message
 * read as it arrived, and a message sent yesterday can be delivered today. So a read counts as
 * reaching the phone too (reached = the larger of delivered and read), and the delivery rate stops at
 * 100 %: a read rate of 225 % or a delivery rate over 100 % would say nothing true.
 */

const reached = (c: StatusCounts): number => Math.max(c.delivered, c.read);

/** Messages that reached the phone per message sent, at most 1; null when nothing was sent. */
export function deliveryRate(c: StatusCounts): number | null {
  return c.sent > 0 ? Math.min(1, reached(c) / c.sent) : null;
}

/** Reads per message that reached the phone; null when none did. */
export function readRate(c: StatusCounts): number | null {
  return reached(c) > 0 ? c.read / reached(c) : null;
}
