import { and, desc, eq, gte, lt, type SQL } from "drizzle-orm";
import { Hono } from "hono";
import { AuditQuery, type AuditList } from "../../../schema/api.ts";
import { auditLog } from "../../../schema/db.ts";
import type { AppEnv } from "../../app-env.ts";
import { valid } from "../../validate.ts";

/** The audit log: sign-ins, sign-outs, lockouts, exports, downloads and admin changes. */
export const adminAudit = new Hono<AppEnv>();

/** `action=auth.` matches every `auth.*`: the actions from `auth.` up to `auth/` ('/' follows '.'). */
function actionFilter(action: string): SQL | undefined {
  if (!action.endsWith(".")) return eq(auditLog.action, action);
  return and(gte(auditLog.action, action), lt(auditLog.action, `${action.slice(0, -1)}/`));
}

adminAudit.get("/", valid("query", AuditQuery), async (c) => {
  const q = c.req.valid("query");
  const conditions = [
    q.from === undefined ? undefined : gte(auditLog.at, q.from),
    q.to === undefined ? undefined : lt(auditLog.at, q.to),
    q.action === undefined ? undefined : actionFilter(q.action),
    q.actor === undefined ? undefined : eq(auditLog.actor, q.actor),
    q.target === undefined ? undefined : eq(auditLog.target, q.target),
    q.before === undefined ? undefined : lt(auditLog.id, q.before),
  ];
  const rows = await c
    .get("db")
    .select()
    .from(auditLog)
    .where(and(...conditions))
    .orderBy(desc(auditLog.id))
    .limit(q.limit + 1);
  const page = rows.slice(0, q.limit);
  const body: AuditList = {
    entries: page.map((r) => ({ ...r, details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>) })),
    next: rows.length > q.limit ? page.at(-1)!.id : null,
  };
  return c.json(body);
});
