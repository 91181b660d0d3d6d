import { errorBody } from "../schema/api.ts";
import { accessGrant, grantUserId } from "../workers/auth/policy.ts";
import { logLine } from "../workers/log.ts";

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
/** The viewer's access when the socket opened (`accessGrant`): the socket is closed once it changes (`openSockets`). */
export const LIVE_GRANT_HEADER = "x-zapmeter-grant";
/** Close code of a socket whose session ended: the dashboard asks for a new ticket, or signs in again. */
export const SESSION_ENDED = 4401;

/** Browsers' keep-alive message; answered by the runtime without waking a hibernated object. */
const PING = "ping";
const PONG = "pong";

/** What every live socket keeps besides its object's own state: its session, when that ends, and the access it had. */
interface SessionBound {
  session: string;
  until: number;
  /** Absent on sockets opened before grants were kept (2026-12-01): they are checked for revocation only. */
  grant?: string;
}

/**
 * How often an object whose viewers get updates asks D1 whether their sessions were revoked (signed
 * out, or rotated away from by the dashboard's cookie) or their users' access changed: such sockets
 * stop within about this long. One small D1 batch per watched object per interval; the objects
 * watched at once are bounded by the dashboards open, not by traffic (docs/live.md).
 */
export const REVOCATION_CHECK_MS = 10_000;

/**
 * Sockets one session may hold open on one object: a dashboard tab holds one per object, so this is
 * twenty tabs on one client; more is a script, and every socket costs the object a send per update.
 */
export const MAX_SOCKETS_PER_SESSION = 20;

/** Close code for a viewer that talks: viewers only listen (and ping, which the runtime answers). */
export const POLICY_VIOLATION = 1008;

/**
 * Accepts the socket of an upgrade request as hibernatable, stores `state` and the viewer's session
 * (its id and end, from the Worker's headers) on it (survives eviction; at most 2 KiB) and lets
 * `onOpen` send the first message.
 */
export function acceptLiveSocket(ctx: DurableObjectState, request: Request, state: object, onOpen: (ws: WebSocket) => void): Response {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return Response.json(errorBody("upgrade_required", "expected a WebSocket upgrade"), { status: 426 });
  }
  const until = Number(request.headers.get(LIVE_UNTIL_HEADER));
  const session = request.headers.get(LIVE_SESSION_HEADER);
  const grant = request.headers.get(LIVE_GRANT_HEADER);
  if (!Number.isSafeInteger(until) || !session || !grant) return Response.json(errorBody("missing_session", "the Worker did not state the viewer's session"), { status: 400 });
  if (ctx.getWebSockets().filter((ws) => attachmentOf(ws).session === session).length >= MAX_SOCKETS_PER_SESSION) {
    return Response.json(errorBody("too_many_sockets", `a session may hold ${MAX_SOCKETS_PER_SESSION} live sockets on one stream; close some first`), { status: 429 });
  }
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
  const { 0: browser, 1: server } = new WebSocketPair();
  ctx.acceptWebSocket(server);
  const attachment = { ...state, session, until, grant } satisfies SessionBound;
  server.serializeAttachment(attachment);
  attachments.set(server, attachment);
  onOpen(server);
  return new Response(null, { status: 101, webSocket: browser });
}

/** Each socket's attachment, deserialized once per wake: a broadcast reads every socket's. */
const attachments = new WeakMap<WebSocket, object>();
/** When each object last asked D1 about its viewers' sessions. */
const revocationsCheckedAt = new WeakMap<DurableObjectState, number>();

/**
 * What `acceptLiveSocket` stored on a socket: its object's `state` (`T`) and the session it is bound
 * to. Every field may be missing: a socket without an attachment reads as `{}` (no session: ended).
 */
export function attachmentOf<T extends object>(ws: WebSocket): Partial<T & SessionBound> {
  let stored = attachments.get(ws);
  if (!stored) attachments.set(ws, (stored = (ws.deserializeAttachment() as object | null) ?? {}));
  return stored as Partial<T & SessionBound>;
}

/**
 * The object's sockets whose session is still valid, to send something to. The others are closed
 * with SESSION_ENDED (after `onEnded`, for the object's own bookkeeping) and get nothing more: a
 * socket must not outlive the session that opened it, nor the access its user had then (a viewer who
 * lost a client must stop seeing it; the dashboard reconnects with what the user may see now).
 * Expiry is checked every time; revocation and access at most every REVOCATION_CHECK_MS, and a send
 * that finds the check due waits for it, so no socket gets anything after its object learnt it should
 * not (an object idle for longer asks before its next send). Between checks, such a socket gets
 * updates for up to that long.
 */
export async function openSockets(ctx: DurableObjectState, db: D1Database, onEnded?: (ws: WebSocket) => void): Promise<WebSocket[]> {
  const now = Date.now();
  const ended = new Set<WebSocket>();
  const end = (ws: WebSocket) => {
    ended.add(ws);
    onEnded?.(ws);
    closeQuietly(ws, SESSION_ENDED, "session ended");
  };
  const open: WebSocket[] = [];
  for (const ws of ctx.getWebSockets()) {
    if ((attachmentOf(ws).until ?? 0) > now) open.push(ws);
    else end(ws);
  }
  if (open.length > 0 && now - (revocationsCheckedAt.get(ctx) ?? 0) >= REVOCATION_CHECK_MS) {
    revocationsCheckedAt.set(ctx, now);
    await closeEnded(db, open, end);
  }
  return ended.size === 0 ? open : open.filter((ws) => !ended.has(ws));
}

/**
 * Ends the sockets whose session is in D1's revocations, or whose user's access is no longer the
 * grant they were opened with (json_each: an Overview may hold more viewers than D1 binds parameters).
 */
async function closeEnded(db: D1Database, sockets: WebSocket[], end: (ws: WebSocket) => void): Promise<void> {
  const bySession = Map.groupBy(sockets, (ws) => attachmentOf(ws).session ?? "");
  const granted = sockets.filter((ws) => attachmentOf(ws).grant !== undefined);
  // A grant of the older whole-list form names no user here and matches none: its socket is ended once, and reconnects.
  const userIds = [...new Set(granted.map((ws) => grantUserId(attachmentOf(ws).grant!)).filter((id) => !Number.isNaN(id)))];
  try {
    const [revoked, grants] = await db.batch<{ jti: string } & { id: number; role: string; active: number; clients: string; valid_from: number }>([
      db
        .prepare("SELECT jti FROM revoked_sessions WHERE jti IN (SELECT value FROM json_each(?)) AND expires_at > ?")
        .bind(JSON.stringify([...bySession.keys()]), Date.now()),
      db
        .prepare(
          `SELECT id, role, active, sessions_valid_from AS valid_from,
             (SELECT json_group_array(client_id) FROM user_clients WHERE user_id = users.id) AS clients
           FROM users WHERE id IN (SELECT value FROM json_each(?))`,
        )
        .bind(JSON.stringify(userIds)),
    ]);
    for (const { jti } of revoked!.results) for (const ws of bySession.get(jti) ?? []) end(ws);
    const current = new Set(await Promise.all(grants!.results.filter((u) => u.active).map((u) => accessGrant(u.id, u.role, JSON.parse(u.clients) as string[], u.valid_from))));
    for (const ws of granted) if (!current.has(attachmentOf(ws).grant!)) end(ws);
  } catch (err) {
    // The next check, an interval later, asks again; expiry is enforced meanwhile.
    logLine("warn", "live_revocation_check_failed", {}, err);
  }
}

/**
 * A message from a viewer. The dashboard sends only "ping", which the runtime answers without waking
 * the object; anything else is not the dashboard, and a socket that floods the object with messages
 * would take its time from every other viewer and from ingest: closed.
 */
export function refuseViewerMessage(ws: WebSocket): void {
  closeQuietly(ws, POLICY_VIOLATION, "viewers only listen");
}

/** Sends unless the socket is already closing: a gone viewer must not fail a broadcast to the others. */
export function sendQuietly(ws: WebSocket, text: string): void {
  try {
    ws.send(text);
  } catch {
    // Closed between getWebSockets() and send(); its close handler cleans up.
  }
}

/** Closes a socket without throwing: completes a close a browser started, or starts one (4401, 1008, 1012). */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    // 1005/1006 are reserved: they may be reported but never sent.
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  } catch {
    // Already closed.
  }
}
