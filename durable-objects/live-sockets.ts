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
/** Close code of a socket whose session ended: the dashboard asks for a new ticket, or signs in again. */
export const SESSION_ENDED = 4401;

/** Browsers' keep-alive message; answered by the runtime without waking a hibernated object. */
const PING = "ping";
const PONG = "pong";

/** What every live socket keeps besides its object's own state: when its session ends. */
interface SessionBound {
  until: number;
}

/**
 * Accepts the socket of an upgrade request as hibernatable, stores `state` and the session's end on
 * it (survives eviction; at most 2 KiB) and lets `onOpen` send the first message.
 */
export function acceptLiveSocket(ctx: DurableObjectState, request: Request, state: object, onOpen: (ws: WebSocket) => void): Response {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade", { status: 426 });
  }
  const until = Number(request.headers.get(LIVE_UNTIL_HEADER));
  if (!Number.isSafeInteger(until)) return new Response("missing session end", { status: 400 });
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  const { 0: browser, 1: server } = new WebSocketPair();
  ctx.acceptWebSocket(server);
  server.serializeAttachment({ ...state, until } satisfies SessionBound);
  sessionEnds.set(server, until);
  onOpen(server);
  return new Response(null, { status: 101, webSocket: browser });
}

/** Each socket's session end, read from its attachment once per wake (a broadcast checks every socket). */
const sessionEnds = new WeakMap<WebSocket, number>();

/**
 * The object's sockets whose session is still valid. The others are closed with SESSION_ENDED
 * (after `onEnded`, for the object's own bookkeeping) and get nothing more: a socket must not outlive
 * the session that opened it. Sockets are checked when something is about to be sent to them, so
 * a socket of an expired session may stay open, idle, until then.
 */
export function openSockets(ctx: DurableObjectState, onEnded?: (ws: WebSocket) => void): WebSocket[] {
  const now = Date.now();
  return ctx.getWebSockets().filter((ws) => {
    let until = sessionEnds.get(ws);
    if (until === undefined) {
      until = (ws.deserializeAttachment() as Partial<SessionBound> | null)?.until ?? 0;
      sessionEnds.set(ws, until);
    }
    if (until > now) return true;
    onEnded?.(ws);
    closeQuietly(ws, SESSION_ENDED, "session ended");
    return false;
  });
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
