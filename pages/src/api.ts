import { ErrorBody } from "../../schema/api.ts";

/**
 * Where the API lives: this origin (the Worker serves the dashboard) unless the build set
 * VITE_API_ORIGIN (the dashboard deployed as a Cloudflare Pages project, docs/live.md).
 */
const API_ORIGIN = ((import.meta.env.VITE_API_ORIGIN as string | undefined) || location.origin).replace(/\/$/, "");
/** Cross-origin, the SameSite=Strict cookie never travels: the bearer token from login does. */
export const CROSS_ORIGIN = API_ORIGIN !== location.origin;
const TOKEN_KEY = "zapmeter.token";

/** A refused API call, with the server's error code and, when it sent them, the details of what is wrong. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};
/** Called when any call answers 401: the session is gone (expired, revoked, signed out elsewhere). */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export function rememberToken(token: string | null): void {
  if (!CROSS_ORIGIN) return;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = CROSS_ORIGIN ? sessionStorage.getItem(TOKEN_KEY) : null;
  if (token) headers.set("authorization", `Bearer ${token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  const res = await fetch(`${API_ORIGIN}${path}`, { ...init, headers, credentials: CROSS_ORIGIN ? "omit" : "same-origin" });
  if (res.ok) return res;
  const parsed = ErrorBody.safeParse(await res.json().catch(() => null));
  const failure = parsed.success
    ? new ApiFailure(res.status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.details)
    : new ApiFailure(res.status, "http_error", `${res.status} ${res.statusText}`);
  if (res.status === 401 && path !== "/v1/auth/login") onUnauthorized();
  throw failure;
}

/** JSON call; throws ApiFailure with the server's error code. */
export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await (await request(path, init)).json()) as T;
}

export function postJson<T>(path: string, body: unknown): Promise<T> {
  return api<T>(path, { method: "POST", body: JSON.stringify(body) });
}

/** Saves a file the API streams (works with the cookie and with the bearer token alike), and returns it. */
export async function download(path: string, filename: string): Promise<Blob> {
  const file = await (await request(path)).blob();
  saveFile(file, filename);
  return file;
}

/** Hands `blob` to the browser as a file download named `filename`. */
export function saveFile(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** WebSocket URL of an API path with a one-use ticket. */
export function socketUrl(path: string, ticket: string): string {
  const url = new URL(`${API_ORIGIN}${path}`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("ticket", ticket);
  return url.toString();
}
