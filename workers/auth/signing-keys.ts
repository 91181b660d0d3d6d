/**
 * One secret's keys. Credentials are signed with the current key only, and checked with it and then,
 * while an operator rotates the secret, with the previous one: a rotation signs no one out and voids
 * no link (docs/operations.md, "Rotating a secret").
 */
export interface SigningKeys {
  current: string;
  /** Unset outside a rotation. */
  previous?: string;
}

/** Sessions and trusted devices: SESSION_SECRET, then SESSION_SECRET_PREVIOUS. */
export function sessionKeys(env: Env): SigningKeys {
  return keysOf(env.SESSION_SECRET, env.SESSION_SECRET_PREVIOUS);
}

/** Download links: FILE_SIGNING_SECRET, then FILE_SIGNING_SECRET_PREVIOUS. */
export function fileKeys(env: Env): SigningKeys {
  return keysOf(env.FILE_SIGNING_SECRET, env.FILE_SIGNING_SECRET_PREVIOUS);
}

// An empty previous secret (a `wrangler secret put` given nothing) verifies nothing, as an unset one.
function keysOf(current: string, previous: string | undefined): SigningKeys {
  return previous ? { current, previous } : { current };
}

/** What a check accepted, and whether the previous key signed it (its holder gets one of the current key where we hand it back). */
export interface Verified<T> {
  value: T;
  byPreviousKey: boolean;
}

/**
 * `check` with the current key, then with the previous one: the first answer other than null or
 * false. The only place a credential is tried against more than one key.
 */
export async function verifyWithKeys<T>(keys: SigningKeys, check: (secret: string) => Promise<T | null | false>): Promise<Verified<T> | null> {
  for (const [secret, byPreviousKey] of [[keys.current, false], [keys.previous, true]] as const) {
    if (secret === undefined) continue;
    const value = await check(secret);
    if (value !== null && value !== false) return { value, byPreviousKey };
  }
  return null;
}
