import type { DrizzleD1Database } from "drizzle-orm/d1";
import type { IngestKey } from "./auth/api-keys.ts";
import type { AuthUser } from "./auth/policy.ts";

/** Hono's environment for every sub-app: bindings plus what middleware puts on the context. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    db: DrizzleD1Database;
    user: AuthUser;
    requestId: string;
    ingestKey: IngestKey;
  };
}
