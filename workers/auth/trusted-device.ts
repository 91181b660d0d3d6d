import { bytesEqual, fromHex, hmacSha256, randomToken, toHex } from "./crypto.ts";

/**
 * A trusted device: a browser or script that has signed in to an account before holds a token naming
 * it (`<id>.<hmac>`, bound to the account's email), and its sign-in failures count in a bucket of
 * its own rather than the account's. So strangers failing an account's sign-in from anywhere lock
 * out other strangers, not the owner at a device they used before (OWASP's "device cookie"). It is a
 * token in the body, not a cookie, so that a dashboard on another origin (which sends no cookies)
 * and API scripts keep one too. It grants nothing but that bucket: the password is still checked.
 */
const ID_BYTES = 16;

function mac(secret: string, email: string, id: string): Promise<ArrayBuffer> {
  return hmacSha256(secret, `trusted-device\n${email.toLowerCase()}\n${id}`);
}

export async function issueDeviceToken(secret: string, email: string): Promise<string> {
  const id = randomToken(ID_BYTES);
  return `${id}.${toHex(await mac(secret, email, id))}`;
}

/**
 * The device's id when `token` was issued for `email` with this secret; undefined otherwise (none, a
 * token of another account, of a rotated secret, or forged), which makes the attempt an untrusted one.
 */
export async function trustedDeviceId(secret: string, email: string, token: string | undefined): Promise<string | undefined> {
  const [id, sig, ...rest] = token?.split(".") ?? [];
  if (!id || !sig || rest.length > 0 || !/^[0-9a-f]+$/.test(id) || id.length !== ID_BYTES * 2) return undefined;
  const given = fromHex(sig);
  return given && bytesEqual(given, await mac(secret, email, id)) ? id : undefined;
}
