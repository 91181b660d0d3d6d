import type { ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { ApiError, issuesOf } from "./errors.ts";

/**
 * Validates one part of the request against a zod schema from schema/ and exposes the parsed value
 * through `c.req.valid(target)`. The same schema objects feed the OpenAPI document.
 */
export function valid<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  return validator(target, (value): z.output<T> => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new ApiError(400, "validation_failed", `invalid ${target === "json" ? "body" : target}`, issuesOf(parsed.error));
    }
    return parsed.data;
  });
}
