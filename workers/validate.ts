import type { ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { ApiError, issuesOf } from "./errors.ts";

/**
 * Validates one part of the request against a zod schema from schema/ and exposes the parsed value
 * through `c.req.valid(target)`. The same schema objects feed the OpenAPI document.
 */
export function valid<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return validator(target, (value, c): z.output<T> => {
    if (target === "json" && !sentAsJson(c.req.raw)) {
      throw new ApiError(415, "unsupported_media_type", "send the body as application/json");
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new ApiError(400, "validation_failed", `invalid ${target === "json" ? "body" : target}`, issuesOf(parsed.error));
    }
    return parsed.data;
  });
}

/**
 * Whether a request's body, if it has one, is declared JSON. Hono's JSON validator reads any other
 * body as `{}`, which the schema then reports as missing fields: a form post would be told `id` is
 * required instead of what is wrong. A request without a body stays `{}` (an overview ticket).
 */
function sentAsJson(req: Request): boolean {
  const type = req.headers.get("content-type");
  if (type === null) return req.headers.get("content-length") === "0" || (!req.headers.has("content-length") && !req.headers.has("transfer-encoding"));
  return /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(type);
}
