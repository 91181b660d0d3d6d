import { Hono } from "hono";
import type { AppEnv } from "../../app-env.ts";
import { authenticate, requireCapability } from "../../auth/middleware.ts";
import { adminApiKeys } from "./api-keys.ts";
import { adminAudit } from "./audit.ts";
import { adminClients } from "./clients.ts";
import { adminDeadLetters } from "./dead-letters.ts";
import { adminErasures } from "./erasures.ts";
import { adminFlush } from "./flush.ts";
import { adminJobs } from "./jobs.ts";
import { adminLakeCompact } from "./lake-compact.ts";
import { adminRateCards } from "./rate-cards.ts";
import { adminUsers } from "./users.ts";

/** Mounted at /v1/admin; every route requires an admin. */
export const admin = new Hono<AppEnv>();
admin.use(authenticate, requireCapability("admin"));
admin.route("/clients", adminClients);
admin.route("/clients/:id/erasures", adminErasures);
admin.route("/rate-cards", adminRateCards);
admin.route("/users", adminUsers);
admin.route("/api-keys", adminApiKeys);
admin.route("/dead-letters", adminDeadLetters);
admin.route("/audit", adminAudit);
admin.route("/flush", adminFlush);
admin.route("/lake/compact", adminLakeCompact);
admin.route("/jobs", adminJobs);
