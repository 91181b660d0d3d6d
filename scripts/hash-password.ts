import { pbkdf2Hash } from "./demo/seed-sql.ts";

/** `node scripts/hash-password.ts '<password>'` prints a hash for the users table (first production admin). */
const password = process.argv[2];
if (!password || password.length < 10) {
  console.error("usage: node scripts/hash-password.ts '<password of at least 10 characters>'");
  process.exit(1);
}
console.log(pbkdf2Hash(password));
