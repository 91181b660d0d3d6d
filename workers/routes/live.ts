import type { Context } from "hono";
import { Hono } from "hono";
import {
  LIVE_CLIENT_HEADER,
  LIVE_GRANT_HEADER,
  LIVE_SCOPE_HEADER,
  LIVE_SHARDS_HEADER,
  LIVE_SESSION_HEADER,
  LIVE_TIMEZONE_HEADER,
  LIVE_UNTIL_HEADER,
} from "../../durable-objects/live-sockets.ts";
import { TOP_SHARD, overviewShardStub } from "../../durable-objects/overview-shards.ts";
import { liveTickets } from "../../schema/db.ts";
import { LiveQuery, LiveTicketRequest, TICKET_TTL_MS, type LiveTicket } from "../../schema/live.ts";
import type { AppEnv } from "../app-env.ts";
import { randomToken, sha256Hex } from "../auth/crypto.ts";
import { liveUser } from "../auth/live-user.ts";
import { authenticate, requireCapability } from "../auth/middleware.ts";
import { allows, seesAllClients, type AuthUser } from "../auth/policy.ts";
import { requireClient } from "../client-records.ts";
import { ApiError } from "../errors.ts";
import { counterOf } from "../../durable-objects/client-shards.ts";
import { valid } from "../validate.ts";

/**
 * Mounted at /v1: live WebSockets and their tickets. The Worker authenticates and checks scope
 * before any upgrade reaches a Durable Object, then states the verified scope to the object.
 */
export const live = new Hono<AppEnv>();

/** One-use ticket for a browser that cannot send the cookie or a header with its WebSocket (another origin). */
live.post("/live/ticket", authenticate, requireCapability("counters"), valid("json", LiveTicketRequest), async (c) => {
  const { client_id: clientId } = c.req.valid("json");
  const user = c.get("user");
  const db = c.get("db");
  if (clientId !== undefined) {
    if (!allows(user, "counters", clientId)) throw new ApiError(403, "forbidden", `no access to client ${clientId}`);
    await requireClient(c.get("db"), clientId);
  }
  const ticket = `zlt_${randomToken(24)}`;
  // Expired tickets are purged daily (workers/auth/purge.ts). The ticket counts as issued when the
  // session was found valid (liveUser dates it by its expiry), so a reset since then ends it.
  const expiresAt = user.checkedAt + TICKET_TTL_MS;
  await db.insert(liveTickets).values({
    hash: await sha256Hex(ticket),
    userId: user.id,
    clientId: clientId ?? null,
    expiresAt,
    sessionId: user.sessionId,
    sessionExpiresAt: user.sessionExpiresAt,
  });
  return c.json({ ticket, expires_at: expiresAt } satisfies LiveTicket);
});

/** The overview of every client the caller may see. */
live.get("/live", valid("query", LiveQuery), async (c) => {
  requireUpgrade(c);
  const user = await liveUser(c, null, c.req.valid("query").ticket);
  if (!allows(user, "counters")) throw new ApiError(403, "forbidden", "requires counters access");
  const scope = seesAllClients(user) ? "*" : JSON.stringify(user.clientIds);
  return overviewShardStub(c.env, TOP_SHARD).fetch(
    new Request("https://overview.internal/live", { headers: { upgrade: "websocket", [LIVE_SCOPE_HEADER]: scope, ...sessionHeaders(user) } }),
  );
});

/** One client's per-minute counters. */
live.get("/clients/:id/live", valid("query", LiveQuery), async (c) => {
  const id = c.req.param("id");
  requireUpgrade(c);
  const user = await liveUser(c, id, c.req.valid("query").ticket);
  if (!allows(user, "counters", id)) throw new ApiError(403, "forbidden", `no access to client ${id}`);
  const { timezone, shards } = await requireClient(c.get("db"), id);
  // A sharded client's viewers connect to its shard 0, which shows the sum of all its shards.
  return counterOf(c.env, id).fetch(
    new Request("https://client.internal/live", {
      headers: {
        upgrade: "websocket",
        [LIVE_CLIENT_HEADER]: id,
        [LIVE_TIMEZONE_HEADER]: timezone,
        [LIVE_SHARDS_HEADER]: String(shards),
        ...sessionHeaders(user),
      },
    }),
  );
});

/** The viewer's session and access as the object keeps them on the socket, which ends with either (live-sockets.ts). */
function sessionHeaders(user: AuthUser): Record<string, string> {
  return {
    [LIVE_SESSION_HEADER]: user.sessionId,
    [LIVE_UNTIL_HEADER]: String(user.sessionExpiresAt),
    [LIVE_GRANT_HEADER]: user.grant,
  };
}

function requireUpgrade(c: Context<AppEnv>): void {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "upgrade_required", "this route speaks WebSocket only");
  }
}
