import { effect, signal, untracked } from "@preact/signals";
import type { PublicUser } from "../../schema/api.ts";
import { api, postJson, rememberToken, whenUnauthorized } from "./api.ts";

/** The signed-in user; undefined while the first /v1/me is in flight. */
export const currentUser = signal<PublicUser | null | undefined>(undefined);

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

whenUnauthorized(() => {
  rememberToken(null);
  currentUser.value = null;
});

export async function loadSession(): Promise<void> {
  try {
    currentUser.value = (await api<{ user: PublicUser }>("/v1/me")).user;
  } catch {
    currentUser.value = null;
  }
}

export async function login(email: string, password: string): Promise<void> {
  const res = await postJson<{ token: string; user: PublicUser }>("/v1/auth/login", { email, password });
  rememberToken(res.token);
  currentUser.value = res.user;
}

export async function logout(): Promise<void> {
  await postJson("/v1/auth/logout", {}).catch(() => undefined);
  rememberToken(null);
  currentUser.value = null;
}

/** Whether the user may open billing (finance and admin). */
export function seesBilling(user: PublicUser): boolean {
  return user.role === "admin" || user.role === "finance";
}

/** Whether the user may export detail reports (personal data: not finance). */
export function seesReports(user: PublicUser): boolean {
  return user.role === "admin" || user.role === "viewer";
}
