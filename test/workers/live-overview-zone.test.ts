import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { OverviewLiveMessage, OverviewRow } from "../../schema/live.ts";
import { DAY_MS, localDate } from "../../schema/time.ts";
import { ingest, status } from "./billing-fixtures.ts";
import { admin, authed, call, createClient, postJson, unique } from "./helpers.ts";
import { LiveSocket } from "./live-helpers.ts";

type Msg = OverviewLiveMessage;
const HOUR_MS = 3_600_000;
const rowOf = (m: Msg, id: string): OverviewRow | undefined => m.clients.find((c) => c.client_id === id);
/** The fixed zone `hours` east of UTC (Etc/ names count the other way). */
const zoneEastOf = (hours: number) => (hours === 0 ? "Etc/GMT" : `Etc/GMT${hours > 0 ? "-" : "+"}${Math.abs(hours)}`);

describe("the overview's row after a client's time-zone change", () => {
  it("keeps the new zone's today once the client's flush alarm has rolled up again", async () => {
    // A zone where it is about noon now, and the zone an hour west of it: the same date in both,
    // while a minute past the first one's midnight is yesterday in the second.
    const now = Date.now();
    const east = (((12 - new Date(now).getUTCHours()) % 24) + 24 + 11) % 24 - 11;
    const [from, to] = [zoneEastOf(east), zoneEastOf(east - 1)];
    expect(localDate(now, from)).toBe(localDate(now, to));
    const midnight = now - ((now + east * HOUR_MS) % DAY_MS);
    const { id } = await createClient({ id: unique("rezoned"), timezone: from });
    await ingest([status(id, `wamid.${unique("m")}`, "sent", midnight + 60_000)]);

    expect((await postJson(`/v1/admin/clients/${id}`, { timezone: to }, await admin(), "PATCH")).status).toBe(200);
    const api = (await (await call(`/v1/clients/${id}`, authed(await admin()))).json()) as { today: { sent: number } };
    expect(api.today.sent).toBe(0);
    // The flush alarm (due within a minute of the event) rolls up what its object holds, in the zone it keeps.
    expect(await runDurableObjectAlarm(env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(id)))).toBe(true);

    const ws = await LiveSocket.connect("/v1/live", { authorization: `Bearer ${await admin()}` });
    const row = rowOf(await ws.next<Msg>(), id);
    ws.close();
    expect(row?.today.sent).toBe(api.today.sent);
  });
});

describe("the overview's row of a client whose date is not UTC's", () => {
  it("counts today in the client's own date where that is not UTC's", async () => {
    // 12 hours east of UTC from noon UTC on, 12 west before it: the local date is never UTC's.
    const now = Date.now();
    const zone = zoneEastOf(new Date(now).getUTCHours() >= 12 ? 12 : -12);
    expect(localDate(now, zone)).not.toBe(localDate(now, "UTC"));
    const { id } = await createClient({ id: unique("offdate"), timezone: zone });
    await ingest([status(id, `wamid.${unique("m")}`, "sent", now)]);
    expect(await runDurableObjectAlarm(env.CLIENT_COUNTER.get(env.CLIENT_COUNTER.idFromName(id)))).toBe(true);

    const ws = await LiveSocket.connect("/v1/live", { authorization: `Bearer ${await admin()}` });
    const row = rowOf(await ws.next<Msg>(), id);
    ws.close();
    expect(row?.today.sent).toBe(1);
  });
});
