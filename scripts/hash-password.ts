import { MIN_PASSWORD_LENGTH } from "../schema/api.ts";
import { hashPassword } from "../workers/auth/password.ts";
import { passwordWeakness } from "../workers/auth/password-policy.ts";

/**
 * `node_modules/.bin/node scripts/hash-password.ts <email> '<password>'` (Node 22) prints a hash for
 * the users table (first production admin), after the checks the API makes of every new password.
 */
const [email, password] = process.argv.slice(2);
if (!email?.includes("@") || !password || password.length < MIN_PASSWORD_LENGTH) {
  console.error(`usage: node_modules/.bin/node scripts/hash-password.ts <email> '<password of at least ${MIN_PASSWORD_LENGTH} characters>'`);
  process.exit(2);
}
const weak = await passwordWeakness(password, email);
if (weak) {
  console.error(`refused: choose another password: ${weak.words}`);
  process.exit(1);
}
console.log(await hashPassword(password));
