import { MIN_PASSWORD_LENGTH } from "../schema/api.ts";
import { hashPassword } from "../workers/auth/password.ts";

/** `node_modules/.bin/node scripts/hash-password.ts '<password>'` (Node 22) prints a hash for the users table (first production admin). */
const password = process.argv[2];
if (!password || password.length < MIN_PASSWORD_LENGTH) {
  console.error(`usage: node_modules/.bin/node scripts/hash-password.ts '<password of at least ${MIN_PASSWORD_LENGTH} characters>'`);
  process.exit(1);
}
console.log(await hashPassword(password));
