import type { HonoRequest, ValidationTargets } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import { fieldIssues } from "../schema/issues.ts";
import { ApiError } from "./errors.ts";
import { jsonSyntaxError } from "./json-syntax.ts";

/**
 * Validates one part of the request against a zod schema from schema/ and exposes the parsed value
 * through `c.req.valid(target)`. The same schema objects feed the OpenAPI document.
 */
export function valid<T extends z.ZodType, Target extends keyof ValidationTargets>(target: Target, schema: T) {
  const check = (value: unknown): z.output<T> => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new ApiError(400, "validation_failed", `invalid ${target === "json" ? "body" : target}`, fieldIssues(parsed.error));
    }
    return parsed.data;
  };
  const middleware = validator(target, target === "query" ? (query: Record<string, string | string[]>) => check(withoutEmptyParams(query)) : check);
  if (target !== "json") return middleware;
  // Hono's JSON validator reads only declared-JSON bodies; the body is read here so that the types
  // `jsonBody` takes get the same checks.
  return (async (c, next) => {
    c.req.addValidatedData("json", check(await jsonBody(c.req)) as object);
    await next();
  }) as typeof middleware;
}

/**
 * `?client_id=` is what a form or a URL template leaves for a parameter nobody filled in: an empty
 * value means the parameter is absent (its default, or "all"), not a value to refuse.
 */
function withoutEmptyParams(query: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(query)) {
    const values = [value].flat().filter((v) => v !== "");
    if (values.length > 0) out[name] = Array.isArray(value) ? values : values[0]!;
  }
  return out;
}

/**
 * A JSON route's body. Declared JSON, `text/plain` (what `fetch` sends for a string body) and no
 * type are read as JSON; an empty body is `{}` (an overview ticket). Forms and other types are
 * refused with 415, so the caller is told what is wrong instead of which field is missing.
 */
async function jsonBody(req: HonoRequest): Promise<unknown> {
  const type = req.header("content-type");
  if (type !== undefined && !/^(application\/([\w.+-]+\+)?json|text\/plain)\s*(;|$)/i.test(type)) {
    throw new ApiError(415, "unsupported_media_type", "send the body as application/json");
  }
  const text = await req.text();
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, "malformed_json", `the body is ${jsonSyntaxError(e)}`);
  }
}
