import { bytesEqual, fromHex, hmacSha256, toHex } from "../auth/crypto.ts";
import { verifyWithKeys, type SigningKeys } from "../auth/signing-keys.ts";

/**
 * Signed, expiring links to R2 objects: `/v1/files/<key>?exp=<epoch s>&sig=<hex>` where sig is
 * HMAC-SHA256(FILE_SIGNING_SECRET, key + "\n" + exp). The signature is the credential, so a link can
 * be opened by a browser download or a script without a session.
 */

export const FILES_PATH = "/v1/files/";
/** How long a download link works. Short: it is a bearer credential that ends up in browser history. */
const DOWNLOAD_TTL_S = 15 * 60;
/** Keys we sign are plain paths, so they appear verbatim in the URL and no encoding ambiguity exists. */
const SIGNABLE_KEY = /^[A-Za-z0-9][A-Za-z0-9=._\/-]*$/;
/**
 * What links are issued for: billing files. The lake (recipients) and dead letters are never served
 * this way, so a leaked signing secret cannot open them either.
 */
const SIGNABLE_PREFIX = "billing/";
/** Clock skew allowed between the Worker that signed a link and the one that serves it. */
const SKEW_S = 60;

/** `not_issued`: a key or an expiry no link is issued with (forged with the secret, or by hand). */
export type Verdict = "ok" | "expired" | "bad_signature" | "not_issued";

function signature(secret: string, key: string, exp: number): Promise<ArrayBuffer> {
  return hmacSha256(secret, `${key}\n${exp}`);
}

/** A path (with query) that serves `key` until `now + ttl`. */
export async function signFileUrl(secret: string, key: string, nowMs: number, ttlS = DOWNLOAD_TTL_S): Promise<{ path: string; expiresAt: number }> {
  if (!SIGNABLE_KEY.test(key) || key.includes("..") || !key.startsWith(SIGNABLE_PREFIX)) throw new Error(`refusing to sign an unusual key: ${key}`);
  const exp = Math.floor(nowMs / 1000) + ttlS;
  const sig = toHex(await signature(secret, key, exp));
  return { path: `${FILES_PATH}${key}?exp=${exp}&sig=${sig}`, expiresAt: exp * 1000 };
}

/**
 * Checks a link's signature (constant time) with the current key, then the previous one of a
 * rotation, so that links handed out just before it keep working; then that it is one we issue, and
 * its expiry.
 */
export async function verifyFileUrl(keys: SigningKeys, key: string, exp: number, sigHex: string, nowMs: number): Promise<Verdict> {
  const given = fromHex(sigHex);
  if (!given || !(await verifyWithKeys(keys, async (secret) => bytesEqual(given, await signature(secret, key, exp))))) return "bad_signature";
  if (!key.startsWith(SIGNABLE_PREFIX) || exp * 1000 > nowMs + (DOWNLOAD_TTL_S + SKEW_S) * 1000) return "not_issued";
  return nowMs >= exp * 1000 ? "expired" : "ok";
}
