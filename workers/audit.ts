import type { DrizzleD1Database } from "drizzle-orm/d1";
import { auditLog } from "../schema/db.ts";

/** Records who did what (sign-ins and -outs, exports, downloads, admin changes). Never pass personal data in details. */
export async function audit(db: DrizzleD1Database, actor: string, action: string, target: string | null, details?: unknown): Promise<void> {
  await db.insert(auditLog).values({
    at: Date.now(),
    actor,
    action,
    target,
    details: details === undefined ? null : JSON.stringify(details),
  });
}
