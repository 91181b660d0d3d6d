import { DAY_MS } from "../../schema/time.ts";
import { bytesEqual, fromHex, hmacSha256, randomToken, toHex } from "./crypto.ts";
import { verifyWithKeys, type SigningKeys } from "./signing-keys.ts";

/**
 * A trusted device: a browser or script that has signed in to an account before holds a token naming
 * it (`<id>.<issued>.<hmac>`), and its sign-in failures count in a bucket of its own rather than the
 * account's. So strangers failing an account's sign-in from anywhere lock out other strangers, not
 * the owner at a device they used before (OWASP's "device cookie"). It is a token in the body, not a
 * cookie, so that a dashboard on another origin (which sends no cookies) and API scripts keep one too.
 * It grants nothing but that bucket: the password is still checked. It is bound to the account's
 * email and to when its sessions were last reset (a password change or reset, a deactivation): tokens
 * collected before a reset do not outlive it. It expires after TTL.
 */
const ID_BYTES = 16;
const TTL_MS = 90 * DAY_MS;

function mac(secret: string, email: string, sessionsValidFrom: number, id: string, issued: number): Promise<ArrayBuffer> {
  return hmacSha256(secret, `trusted-device\n${email.toLowerCase()}\n${sessionsValidFrom}\n${id}\n${issued}`);
}

export function issueDeviceToken(secret: string, email: string, sessionsValidFrom: number): Promise<string> {
  return deviceToken(secret, email, sessionsValidFrom, randomToken(ID_BYTES), Date.now());
}

async function deviceToken(secret: string, email: string, sessionsValidFrom: number, id: string, issued: number): Promise<string> {
  return `${id}.${issued}.${toHex(await mac(secret, email, sessionsValidFrom, id, issued))}`;
}

/** A device the account trusts: its id, and the token it holds from now on. */
export interface TrustedDevice {
  id: string;
  token: string;
}

/**
 * The device when `token` was issued for `email` since its sessions were last reset, with the
 * session keys, less than TTL ago; undefined otherwise (none, another account's, a reset since,
 * expired, a key no longer accepted, forged), which makes the attempt an untrusted one. A token
 * signed with the previous key of a rotation comes back re-signed with the current key, as the same
 * device (its id and its age): it stays trusted once the previous key is deleted.
 */
export async function trustedDevice(
  keys: SigningKeys,
  email: string,
  sessionsValidFrom: number,
  token: string | undefined,
): Promise<TrustedDevice | undefined> {
  const [id, issuedText, sig, ...rest] = token?.split(".") ?? [];
  const issued = Number(issuedText);
  if (!id || !sig || rest.length > 0 || !/^[0-9a-f]+$/.test(id) || id.length !== ID_BYTES * 2) return undefined;
  if (!/^\d{1,15}$/.test(issuedText ?? "") || Date.now() - issued >= TTL_MS) return undefined;
  const given = fromHex(sig);
  const verified = given && (await verifyWithKeys(keys, async (secret) => bytesEqual(given, await mac(secret, email, sessionsValidFrom, id, issued))));
  if (!verified) return undefined;
  return { id, token: verified.byPreviousKey ? await deviceToken(keys.current, email, sessionsValidFrom, id, issued) : token! };
}
