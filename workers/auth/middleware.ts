import { getCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../errors.ts";
import { allows, type Capability } from "./policy.ts";
import { SESSION_COOKIE, userFromToken } from "./session.ts";

/** The session token from `Authorization: Bearer` or the session cookie. */
export function sessionToken(authorization: string | undefined, cookie: string | undefined): string | undefined {
  const bearer = authorization?.match(/^Bearer\s+(.+)$/i)?.[1];
  return bearer ?? cookie;
}

/** Requires a valid session; puts the user on the context. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  const token = sessionToken(c.req.header("authorization"), getCookie(c, SESSION_COOKIE));
  if (!token) throw new ApiError(401, "unauthenticated", "sign in first (session cookie or bearer token)");
  const user = await userFromToken(c.get("db"), c.env.SESSION_SECRET, token);
  if (!user) throw new ApiError(401, "unauthenticated", "session is invalid or expired");
  c.set("user", user);
  await next();
});

/**
 * Requires the signed-in user to hold `capability`, on the client named by route param `clientParam`
 * when given. The only place routes decide who may do what.
 */
export function requireCapability(capability: Capability, clientParam?: string) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const clientId = clientParam ? c.req.param(clientParam) : undefined;
    if (!allows(c.get("user"), capability, clientId)) {
      throw new ApiError(403, "forbidden", clientId ? `no access to client ${clientId}` : `requires ${capability} access`);
    }
    await next();
  });
}
