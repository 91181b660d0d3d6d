import { z } from "zod";

/**
 * The `device_token`s this browser got by signing in, by account (workers/auth/trusted-device.ts).
 * Sent back with the next sign-in to the same account, so that strangers failing that account's
 * sign-in elsewhere do not lock this browser out. Kept per account, since people share a browser;
 * the most recent few, since each is a few dozen bytes and an old one only costs that bucket.
 */
const DEVICES_KEY = "zapmeter.devices";
const MAX_ACCOUNTS = 10;
const Devices = z.array(z.tuple([z.string(), z.string()]));

function stored(): [string, string][] {
  try {
    const parsed = Devices.safeParse(JSON.parse(localStorage.getItem(DEVICES_KEY) ?? "[]"));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}

export function deviceToken(email: string): string | undefined {
  const account = email.toLowerCase();
  return stored().find(([e]) => e === account)?.[1];
}

export function rememberDevice(email: string, token: string): void {
  const account = email.toLowerCase();
  const others = stored().filter(([e]) => e !== account);
  localStorage.setItem(DEVICES_KEY, JSON.stringify([[account, token], ...others].slice(0, MAX_ACCOUNTS)));
}
