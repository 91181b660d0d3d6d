import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { DEMO_CLIENTS } from "../../scripts/demo/catalog.ts";
import { seedSql } from "../../scripts/demo/seed-sql.ts";

/** The dev seed of every `npm start` (scripts/demo/seed-sql.ts), on an in-memory D1 with the migrations applied. */
function migrated(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  const dir = resolve(import.meta.dirname, "../../migrations");
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    for (const s of readFileSync(join(dir, f), "utf8").split("--> statement-breakpoint")) if (s.trim()) db.exec(s);
  }
  return db;
}

const phonesOf = (db: DatabaseSync, clientId: string) =>
  (db.prepare("SELECT phone_number_id FROM phone_numbers WHERE client_id = ? ORDER BY 1").all(clientId) as { phone_number_id: string }[]).map((r) => r.phone_number_id);

describe("dev seed", () => {
  it("gives a demo client its phone numbers on a fresh database", async () => {
    const db = migrated();
    db.exec(await seedSql(1_000));
    for (const c of DEMO_CLIENTS) expect(phonesOf(db, c.id)).toEqual([...c.phoneNumberIds].sort());
  });

  it("keeps an admin's removal of a phone number from a demo client over a restart", async () => {
    const db = migrated();
    db.exec(await seedSql(1_000));
    const client = DEMO_CLIENTS.find((c) => c.phoneNumberIds.length >= 2)!;
    const [kept, removed] = client.phoneNumberIds as [string, string];
    // What PATCH /v1/admin/clients/:id {"phone_number_ids": [kept]} writes (workers/client-records.ts).
    db.prepare("DELETE FROM phone_numbers WHERE client_id = ?").run(client.id);
    db.prepare("INSERT INTO phone_numbers (phone_number_id, client_id) VALUES (?, ?)").run(kept, client.id);
    db.prepare("INSERT INTO phone_number_releases (phone_number_id, client_id, released_at) VALUES (?, ?, ?)").run(removed, client.id, 2_000);
    db.exec(await seedSql(3_000));
    expect(phonesOf(db, client.id)).toEqual([kept]);
  });
});
