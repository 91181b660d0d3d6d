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

/** Browsers' keep-alive message; answered by the runtime without waking a hibernated object. */
const PING = "ping";
const PONG = "pong";

/**
 * Accepts the socket of an upgrade request as hibernatable, stores `state` on it (survives eviction;
 * at most 2 KiB) and lets `onOpen` send the first message.
 */
export function acceptLiveSocket(ctx: DurableObjectState, request: Request, state: unknown, onOpen: (ws: WebSocket) => void): Response {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("expected a WebSocket upgrade", { status: 426 });
  }
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  const { 0: browser, 1: server } = new WebSocketPair();
  ctx.acceptWebSocket(server);
  server.serializeAttachment(state);
  onOpen(server);
  return new Response(null, { status: 101, webSocket: browser });
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
