import { DEV_PASSWORD } from "../../schema/dev-credentials.ts";
import type { WeakPasswordReason } from "../../schema/api.ts";

/**
 * Passwords people choose that guessing tries first (NIST SP 800-63B, 5.1.1.2: refuse "commonly-used,
 * expected or compromised" ones): zxcvbn's list of the most common leaked passwords, those long
 * enough to pass the length rule (~18,000). The sign-in lockout allows ~14,000 guesses a day per
 * account, which the top of this list would otherwise be. Imported on first use: the module
 * decompresses its lists when it is evaluated (~20 ms), which every isolate's start would pay, and
 * only user creation and password changes ask.
 */
let common: Set<string> | undefined;

/** Why a password is refused: `details.reason` of a `weak_password` error, and its words. */
const WEAKNESS: Record<WeakPasswordReason, string> = {
  common: "it is one of the most common passwords",
  repeated: "it is one character repeated",
  email: "it is the user's email",
  development: "it is the documented development password",
};

/** The set, not the promise of it, is kept: a request must not await a promise another request started. */
async function commonPasswords(): Promise<Set<string>> {
  common ??= new Set((await import("@zxcvbn-ts/language-common")).dictionary["passwords-common"] as string[]);
  return common;
}

/**
 * Why `password` is too weak for the user `email`, or null: among the common ones, one character
 * repeated, the user's own email or its name part, or the dev password; in every environment, where
 * the dev password is refused at sign-in in production only (its users are seeded, not created).
 * The API answers a weak one 400 `weak_password` (workers/auth/strong-password.ts).
 */
export async function passwordWeakness(password: string, email: string): Promise<{ reason: WeakPasswordReason; words: string } | null> {
  const lower = password.toLowerCase();
  const name = email.toLowerCase().split("@")[0]!;
  const reason: WeakPasswordReason | null = (await commonPasswords()).has(lower)
    ? "common"
    : new Set(password).size === 1
      ? "repeated"
      : lower === email.toLowerCase() || lower === name
        ? "email"
        : lower === DEV_PASSWORD
          ? "development"
          : null;
  return reason && { reason, words: WEAKNESS[reason] };
}
