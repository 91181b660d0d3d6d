/**
 * WebSocket plumbing shared by the ClientCounter and the Overview (Hibernation API).
 *
 * Durable Objects are reachable only through their namespace bindings, so the Worker is the only
 * caller of their `fetch`: it authenticates the viewer and states the verified scope in these headers.
 */
export const LIVE_CLIENT_HEADER = "x-zapmeter-client";
export const LIVE_TIMEZONE_HEADER = "x-zapmeter-timezone";
/** The client's shard count (absent: 1). */
export const LIVE_SHARDS_HEADER = "x-zapmeter-shards";
/** `*` for every client, else a JSON array of client ids. */
export const LIVE_SCOPE_HEADER = "x-zapmeter-scope";
/** When the viewer's session ends, epoch ms: the socket is closed then (`openSockets`). */
export const LIVE_UNTIL_HEADER = "x-zapmeter-until";
/** The viewer's session id: the socket is closed once that session is revoked (`openSockets`). */
export const LIVE_SESSION_HEADER = "x-zapmeter-session";
/** Close code of a socket whose session ended: the dashboard asks for a new ticket, or signs in again. */
export const SESSION_ENDED = 4401;

/** Browsers' keep-alive message; answered by the runtime without waking a hibernated object. */
const PING = "ping";
const PONG = "pong";

/** What every live socket keeps besides its object's own state: its session, and when that ends. */
interface SessionBound {
  session: string;
  until: number;
}

/**
 * How often an object whose viewers get updates asks D1 whether their sessions were revoked (signed
 * out, or rotated away from by the dashboard's cookie): a signed-out session's sockets stop within
 * about this long, for one D1 read per watched object per interval.
 */
const REVOCATION_CHECK_MS = 60_000;

/**
 * Accepts the socket of an upgrade request as hibernatable, stores `state` and the viewer's session
 * (its id and end, from the Worker's headers) on it (survives eviction; at most 2 KiB) and lets
 * `onOpen` send the first message.
 */
export function acceptLiveSocket(ctx: DurableObjectState, request: Request, state: object, onOpen: (ws: WebSocket) => void): Response {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade", { status: 426 });
  }
  const until = Number(request.headers.get(LIVE_UNTIL_HEADER));
  const session = request.headers.get(LIVE_SESSION_HEADER);
  if (!Number.isSafeInteger(until) || !session) return new Response("missing session", { status: 400 });
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  const { 0: browser, 1: server } = new WebSocketPair();
  ctx.acceptWebSocket(server);
  server.serializeAttachment({ ...state, session, until } satisfies SessionBound);
  sessions.set(server, { session, until });
  onOpen(server);
  return new Response(null, { status: 101, webSocket: browser });
}

/** Each socket's session, read from its attachment once per wake (a broadcast checks every socket). */
const sessions = new WeakMap<WebSocket, SessionBound>();
/** When each object last asked D1 about its viewers' sessions. */
const revocationsCheckedAt = new WeakMap<DurableObjectState, number>();

function sessionOf(ws: WebSocket): SessionBound {
  let bound = sessions.get(ws);
  if (!bound) {
    const stored = ws.deserializeAttachment() as Partial<SessionBound> | null;
    bound = { session: stored?.session ?? "", until: stored?.until ?? 0 };
    sessions.set(ws, bound);
  }
  return bound;
}

/**
 * The object's sockets whose session is still valid. The others are closed with SESSION_ENDED
 * (after `onEnded`, for the object's own bookkeeping) and get nothing more: a socket must not outlive
 * the session that opened it. Expiry is checked now; revocation in the background at most every
 * REVOCATION_CHECK_MS, so a revoked session's socket gets updates for up to that long. Sockets are
 * checked when something is about to be sent to them: an idle one may stay open until then.
 */
export function openSockets(ctx: DurableObjectState, db: D1Database, onEnded?: (ws: WebSocket) => void): WebSocket[] {
  const now = Date.now();
  const end = (ws: WebSocket) => {
    onEnded?.(ws);
    closeQuietly(ws, SESSION_ENDED, "session ended");
  };
  const open: WebSocket[] = [];
  for (const ws of ctx.getWebSockets()) {
    if (sessionOf(ws).until > now) open.push(ws);
    else end(ws);
  }
  if (open.length > 0 && now - (revocationsCheckedAt.get(ctx) ?? 0) >= REVOCATION_CHECK_MS) {
    revocationsCheckedAt.set(ctx, now);
    ctx.waitUntil(closeRevoked(db, open, end));
  }
  return open;
}

/** Ends the sockets whose session is in D1's revocations (json_each: an Overview may hold more viewers than D1 binds parameters). */
async function closeRevoked(db: D1Database, sockets: WebSocket[], end: (ws: WebSocket) => void): Promise<void> {
  const bySession = Map.groupBy(sockets, (ws) => sessionOf(ws).session);
  try {
    const { results } = await db
      .prepare("SELECT jti FROM revoked_sessions WHERE jti IN (SELECT value FROM json_each(?)) AND expires_at > ?")
      .bind(JSON.stringify([...bySession.keys()]), Date.now())
      .all<{ jti: string }>();
    for (const { jti } of results) for (const ws of bySession.get(jti) ?? []) end(ws);
  } catch (err) {
    // The next check, an interval later, asks again; expiry is enforced meanwhile.
    console.warn(JSON.stringify({ level: "warn", event: "live_revocation_check_failed", error: String(err) }));
  }
}

/** Sends unless the socket is already closing: a gone viewer must not fail a broadcast to the others. */
export function sendQuietly(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // Closed between getWebSockets() and send(); its close handler cleans up.
  }
}

/** Completes the closing handshake a browser started. */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    // 1005/1006 are reserved: they may be reported but never sent.
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  } catch {
    // Already closed.
  }
}
