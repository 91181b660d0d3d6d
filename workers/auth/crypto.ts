/** Small WebCrypto helpers shared by signatures, passwords, keys and signed URLs. */

const encoder = new TextEncoder();

const HEX_PAIRS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  let hex = "";
  for (const b of new Uint8Array(bytes)) hex += HEX_PAIRS[b];
  return hex;
}

export function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function randomToken(bytes: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

/**
 * Imported HMAC keys by secret: importing again for every webhook was ~1 % of a webhook's CPU.
 * Secrets are few (the app secret, the URL-signing key). Keys, not promises, are kept: a pending
 * promise from one request must not be awaited by another.
 */
const MAX_HMAC_KEYS = 64;
const hmacKeys = new Map<string, CryptoKey>();

async function hmacKey(secret: string): Promise<CryptoKey> {
  const known = hmacKeys.get(secret);
  if (known) return known;
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  if (hmacKeys.size >= MAX_HMAC_KEYS) hmacKeys.clear();
  hmacKeys.set(secret, key);
  return key;
}

export async function hmacSha256(secret: string, data: BufferSource | string): Promise<ArrayBuffer> {
  return crypto.subtle.sign("HMAC", await hmacKey(secret), typeof data === "string" ? encoder.encode(data) : data);
}

/**
 * Constant-time equality of two byte strings (length is not secret). A plain XOR fold rather than
 * workerd's `crypto.subtle.timingSafeEqual`, so the module also runs under Node (tests, chaos runner).
 */
export function bytesEqual(a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array): boolean {
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  if (x.byteLength !== y.byteLength) return false;
  let diff = 0;
  for (let i = 0; i < x.byteLength; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** Constant-time comparison of two secrets given as text (compares their HMACs, so lengths leak nothing). */
export async function constantTimeEqualText(a: string, b: string): Promise<boolean> {
  const key = crypto.getRandomValues(new Uint8Array(16));
  const keyText = toHex(key);
  return bytesEqual(await hmacSha256(keyText, a), await hmacSha256(keyText, b));
}
