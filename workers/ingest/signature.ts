import { bytesEqual, fromHex, hmacSha256 } from "../auth/crypto.ts";

/**
 * Checks Meta's `X-Hub-Signature-256: sha256=<hex>` over the raw request bytes, in constant time.
 * The bytes must be the ones received: re-serialised JSON would not match.
 */
export async function verifyMetaSignature(rawBody: ArrayBuffer, header: string | undefined, appSecret: string): Promise<boolean> {
  const hex = header?.match(/^sha256=([0-9a-fA-F]{64})$/)?.[1];
  if (hex === undefined) return false;
  return bytesEqual(await hmacSha256(appSecret, rawBody), fromHex(hex)!);
}
