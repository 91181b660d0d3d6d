import { createHash } from "node:crypto";
import { hashPassword } from "../../workers/auth/password.ts";
import { DEFAULT_RATES, DEMO_CLIENTS, DEV_INGEST_KEY, DEV_PASSWORD, DEV_USERS } from "./catalog.ts";

const q = (v: string | number | null) => (v === null ? "NULL" : typeof v === "number" ? String(v) : `'${v.replaceAll("'", "''")}'`);

/**
 * Idempotent seed: dev users, demo clients with phone numbers, the default rate card and the dev
 * ingest key. Existing rows are left as they are (INSERT OR IGNORE), and a client's phone numbers and
 * a user's clients are seeded only with the client or user, so a restart keeps edits.
 */
export async function seedSql(now = Date.now()): Promise<string> {
  const lines: string[] = [];
  for (const c of DEMO_CLIENTS) {
    lines.push(
      `INSERT OR IGNORE INTO clients (id, name, timezone, currency, shards, active, created_at) VALUES (${q(c.id)}, ${q(c.name)}, ${q(c.timezone)}, ${q(c.currency)}, ${c.shards}, 1, ${now});`,
    );
    // Only when this run created the client: a number an admin took off it has no row left to keep it off.
    for (const p of c.phoneNumberIds) {
      lines.push(`INSERT OR IGNORE INTO phone_numbers (phone_number_id, client_id) SELECT ${q(p)}, id FROM clients WHERE id = ${q(c.id)} AND created_at = ${now};`);
    }
  }
  for (const u of DEV_USERS) {
    // The Worker's own hashing (WebCrypto runs in Node too), so the seeded users sign in whatever its
    // parameters; a hash per user, each with its own salt, as the API makes them.
    const hash = await hashPassword(DEV_PASSWORD);
    lines.push(
      `INSERT OR IGNORE INTO users (email, password_hash, role, active, created_at) VALUES (${q(u.email)}, ${q(hash)}, ${q(u.role)}, 1, ${now});`,
    );
    // A user's clients only when this run created the user: an admin's later change of them stays.
    for (const c of u.clientIds) {
      lines.push(`INSERT OR IGNORE INTO user_clients (user_id, client_id) SELECT id, ${q(c)} FROM users WHERE email = ${q(u.email)} AND created_at = ${now};`);
    }
  }
  for (const r of DEFAULT_RATES) {
    lines.push(
      `INSERT INTO rate_cards (client_id, category, country, unit_price_micros, currency, valid_from) SELECT NULL, ${q(r.category)}, ${q(r.country)}, ${r.micros}, 'USD', 0 WHERE NOT EXISTS (SELECT 1 FROM rate_cards WHERE client_id IS NULL AND category = ${q(r.category)} AND country = ${q(r.country)} AND valid_from = 0);`,
    );
  }
  const keyHash = createHash("sha256").update(DEV_INGEST_KEY).digest("hex");
  lines.push(
    `INSERT OR IGNORE INTO api_keys (id, hash, scope, client_id, label, created_at) VALUES ('key_dev', ${q(keyHash)}, 'ingest', NULL, 'dev ingest key', ${now});`,
  );
  return lines.join("\n");
}
