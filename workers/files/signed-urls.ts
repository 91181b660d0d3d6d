import { bytesEqual, fromHex, hmacSha256, toHex } from "../auth/crypto.ts";

/**
 * Signed, expiring links to R2 objects: `/v1/files/<key>?exp=<epoch s>&sig=<hex>` where sig is
 * HMAC-SHA256(FILE_SIGNING_SECRET, key + "\n" + exp). The signature is the credential, so a link can
 * be opened by a browser download or a script without a session.
 */

export const FILES_PATH = "/v1/files/";
/** How long a download link works. Short: it is a bearer credential that ends up in browser history. */
export const DOWNLOAD_TTL_S = 15 * 60;
/** Keys we sign are plain paths, so they appear verbatim in the URL and no encoding ambiguity exists. */
const SIGNABLE_KEY = /^[A-Za-z0-9][A-Za-z0-9=._\/-]*$/;

export type Verdict = "ok" | "expired" | "bad_signature";

function signature(secret: string, key: string, exp: number): Promise<ArrayBuffer> {
  return hmacSha256(secret, `${key}\n${exp}`);
}

/** A path (with query) that serves `key` until `now + ttl`. */
export async function signFileUrl(secret: string, key: string, nowMs: number, ttlS = DOWNLOAD_TTL_S): Promise<{ path: string; expiresAt: number }> {
  if (!SIGNABLE_KEY.test(key) || key.includes("..")) throw new Error(`refusing to sign an unusual key: ${key}`);
  const exp = Math.floor(nowMs / 1000) + ttlS;
  const sig = toHex(await signature(secret, key, exp));
  return { path: `${FILES_PATH}${key}?exp=${exp}&sig=${sig}`, expiresAt: exp * 1000 };
}

/** Checks a link's signature (constant time) and then its expiry. */
export async function verifyFileUrl(secret: string, key: string, exp: number, sigHex: string, nowMs: number): Promise<Verdict> {
  const given = fromHex(sigHex);
  if (!given || !bytesEqual(given, await signature(secret, key, exp))) return "bad_signature";
  return nowMs >= exp * 1000 ? "expired" : "ok";
}
