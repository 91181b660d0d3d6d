import { effect, signal, untracked } from "@preact/signals";
import { z } from "zod";
import { roleAllows, type LoginRequest, type LoginResponse, type PublicUser } from "../../schema/api.ts";
import { ApiFailure, CROSS_ORIGIN, api, postJson, rememberToken, whenUnauthorized } from "./api.ts";
import { deviceToken, rememberDevice } from "./trusted-devices.ts";

/** The signed-in user; undefined while the first /v1/me is in flight. */
export const currentUser = signal<PublicUser | null | undefined>(undefined);

/**
 * True while /v1/me gets no answer (no network, a 5xx): the session may well be valid, so the page
 * waits and asks again rather than sending a signed-in user to the sign-in form.
 */
export const sessionUnreachable = signal(false);
const SESSION_RETRY_MS = [1_000, 2_000, 5_000, 10_000];

/**
 * How the last session in this tab ended: "signed-out" when someone chose to (here, in another tab, or
 * by signing in as someone else there), "expired" when the server stopped taking it (expired, revoked).
 * Null while signed in, and when this tab never had a session.
 */
export type SessionEnd = "signed-out" | "expired";
export const sessionEnd = signal<SessionEnd | null>(null);

const clears: (() => void)[] = [];
/**
 * Registers state that belongs to the signed-in user (rows, searches, names): `clear` runs whenever
 * that user changes, however it happens (sign-out, expiry, another tab), so no one sees another's data.
 */
export function clearOnUserChange(clear: () => void): void {
  clears.push(clear);
}
let shownUserId: number | null = null;
effect(() => {
  const id = currentUser.value?.id ?? null;
  if (id === shownUserId) return;
  shownUserId = id;
  untracked(() => clears.forEach((clear) => clear()));
});

/** What one tab of the dashboard tells the others about its session. */
const TabMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("signed-out") }),
  z.object({ type: z.literal("signed-in"), user_id: z.number().int() }),
]);
const tabs = new BroadcastChannel("zapmeter.session");
tabs.onmessage = (e: MessageEvent) => {
  const msg = TabMessage.safeParse(e.data);
  if (!msg.success) return;
  const user = currentUser.value;
  if (msg.data.type === "signed-out") {
    // Across origins each tab holds its own bearer token: revoke it too (the request has read it
    // before forget() drops it). On one origin the tabs share the cookie, which is already gone.
    if (CROSS_ORIGIN && user) void postJson("/v1/auth/logout", {}).catch(() => undefined);
    forget("signed-out");
  } else if (user?.id !== msg.data.user_id) {
    // Another tab signed in (as someone else, or while this one was signed out). On one origin the
    // tabs share the cookie, which is that user's now: follow it. Across origins this tab's token is its own.
    forget("signed-out");
    if (!CROSS_ORIGIN) void loadSession();
  }
};

/** Drops the session; `why` is kept only when there was a user to lose, not for a first visit's 401. */
function forget(why: SessionEnd): void {
  rememberToken(null);
  if (currentUser.value) sessionEnd.value = why;
  currentUser.value = null;
}

/** While the sign-out call is on its way: a 401 answering it (the session had already ended) is still a sign-out. */
let signingOut = false;
whenUnauthorized(() => forget(signingOut ? "signed-out" : "expired"));

function signedIn(user: PublicUser): void {
  sessionEnd.value = null;
  currentUser.value = user;
}

/** Asks who is signed in; only an answer that says so (a 401, any 4xx) means nobody is. */
export async function loadSession(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const { user } = await api<{ user: PublicUser }>("/v1/me");
      sessionUnreachable.value = false;
      signedIn(user);
      return;
    } catch (e) {
      if (e instanceof ApiFailure && e.status < 500) {
        sessionUnreachable.value = false;
        currentUser.value = null;
        return;
      }
      sessionUnreachable.value = true;
      await new Promise((wake) => setTimeout(wake, SESSION_RETRY_MS[Math.min(attempt, SESSION_RETRY_MS.length - 1)]));
    }
  }
}

export async function login(email: string, password: string): Promise<void> {
  const res = await postJson<LoginResponse>("/v1/auth/login", { email, password, device_token: deviceToken(email) } satisfies LoginRequest);
  rememberToken(res.token);
  rememberDevice(email, res.device_token);
  signedIn(res.user);
  tabs.postMessage({ type: "signed-in", user_id: res.user.id } satisfies z.input<typeof TabMessage>);
}

/**
 * A new password for the signed-in user. The server ends every session of the user and answers with a
 * fresh one for this tab (a new cookie on one origin, which the other tabs share; across origins the
 * other tabs' tokens end and they sign in again).
 */
export async function changePassword(current: string, next: string): Promise<void> {
  const res = await postJson<LoginResponse>("/v1/auth/password", { current_password: current, new_password: next });
  rememberToken(res.token);
  rememberDevice(res.user.email, res.device_token);
  currentUser.value = res.user;
}

export async function logout(): Promise<void> {
  signingOut = true;
  await postJson("/v1/auth/logout", {}).catch(() => undefined);
  signingOut = false;
  forget("signed-out");
  tabs.postMessage({ type: "signed-out" } satisfies z.input<typeof TabMessage>);
}

/** Whether the user may open billing (finance and admin). */
export function seesBilling(user: PublicUser): boolean {
  return roleAllows(user.role, "billing");
}

/** Whether the user may compute a day's billing now (admins; the cron does it for everyone). */
export function runsBilling(user: PublicUser): boolean {
  return roleAllows(user.role, "admin");
}

/** Whether the user may export detail reports (personal data: not finance). */
export function seesReports(user: PublicUser): boolean {
  return roleAllows(user.role, "report");
}
