import type { z } from "zod";

/**
 * A fast path in front of a zod object schema, built from the schema itself: `accept(value)` returns
 * zod's output for the values it can vouch for, and `undefined` for every other value, which then goes
 * to `schema.safeParse` (the one that decides, and words the errors).
 *
 * Why: workerd forbids generating code at run time, so zod runs without its JIT, and its generic
 * per-field machinery (a payload object and an issues array per field, check loops) was ~20 % of the
 * CPU of a bridged 1,000-event request (docs/capacity.md). The closures here do the same checks
 * without it.
 *
 * It is deliberately conservative: whatever it accepts zod accepts with the same output, while some
 * values zod accepts are left to zod (a string whose length in code points cannot be told from its
 * UTF-16 length, a union's later options). It knows a whitelist of schema kinds and checks, read from
 * the schema's definition, so the rules stay written once in schema/; a field of any other kind makes
 * `compileObject` throw when the module loads, rather than silently never taking the fast path.
 */

/** A compiled schema: the output, or NOT_VOUCHED when zod has to decide. */
type Step = (value: unknown) => unknown;
const NOT_VOUCHED = Symbol("not vouched");

/** The parts of zod's internal definitions read here (zod 4, `schema._zod.def`, `check._zod.def`). */
interface Internals {
  _zod: { def: Record<string, unknown> & { type: string }; traits: Set<string>; values?: Set<unknown>; optin?: string; optout?: string };
}

export class UncompilableSchema extends Error {}

export function compileObject<S extends z.ZodObject>(schema: S): (value: unknown) => z.output<S> | undefined {
  const step = compile(schema as unknown as Internals, "(record)");
  return (value) => {
    const out = step(value);
    return out === NOT_VOUCHED ? undefined : (out as z.output<S>);
  };
}

function compile(schema: Internals, path: string): Step {
  const { def, traits } = schema._zod;
  const own = traits.has("$ZodCheck");
  switch (def.type) {
    case "object":
      return compileShape(schema, path);
    case "string":
      // A string format (email, datetime, …) is its own check with rules of its own: not compiled.
      if (def.coerce || own) break;
      return typed((v) => typeof v === "string", checksOf(def, path));
    case "number":
      if (def.coerce || own) break;
      return typed((v) => typeof v === "number" && Number.isFinite(v), checksOf(def, path));
    case "boolean":
      if (def.coerce) break;
      return (v) => (typeof v === "boolean" ? v : NOT_VOUCHED);
    case "enum": {
      const values = schema._zod.values!;
      return (v) => (values.has(v) ? v : NOT_VOUCHED);
    }
    case "nullable": {
      const inner = compile(def.innerType as Internals, path);
      return (v) => (v === null ? null : inner(v));
    }
    case "default": {
      const inner = compile(def.innerType as Internals, path);
      // `defaultValue` is a getter (a fresh copy each time), read per use as zod does.
      return (v) => {
        if (v === undefined) return def.defaultValue;
        const out = inner(v);
        return out === undefined ? def.defaultValue : out;
      };
    }
    case "union": {
      // zod returns the first option that accepts. Only the first option is compiled: a later one's
      // output is zod's only when every earlier option rejects, which "not vouched" does not say.
      if (traits.has("$ZodXor") || traits.has("$ZodDiscriminatedUnion")) break;
      return compile((def.options as Internals[])[0]!, path);
    }
    case "pipe": {
      if (traits.has("$ZodCodec")) break;
      const input = compile(def.in as Internals, path);
      const output = compile(def.out as Internals, path);
      return (v) => {
        const mid = input(v);
        return mid === NOT_VOUCHED ? NOT_VOUCHED : output(mid);
      };
    }
    case "transform": {
      const fn = def.transform as (v: unknown) => unknown;
      // A transform that takes zod's context may add issues: only zod can run it.
      if (fn.length > 1) break;
      return (v) => {
        const out = fn(v);
        return out instanceof Promise ? NOT_VOUCHED : out;
      };
    }
  }
  throw new UncompilableSchema(`${path}: a ${def.type} schema of this kind is not compiled; extend workers/ingest/compiled-schema.ts or parse it with zod`);
}

function compileShape(schema: Internals, path: string): Step {
  const { def } = schema._zod;
  const shape = def.shape as Record<string, Internals>;
  if (def.catchall !== undefined || (def.checks as unknown[] | undefined)?.length || Object.getOwnPropertySymbols(shape).length) {
    throw new UncompilableSchema(`${path}: objects with a catchall, symbol keys or checks of their own are not compiled`);
  }
  const fields = Object.keys(shape)
    .filter((key) => key !== "__proto__")
    .map((key) => ({ key, step: compile(shape[key]!, key), defaulted: shape[key]!._zod.optin === "defaulted", optionalOut: shape[key]!._zod.optout === "optional" }));
  return (v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return NOT_VOUCHED;
    const input = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const { key, step, defaulted, optionalOut } of fields) {
      const present = key in input;
      // An absent key is an error unless the field supplies a default; optional fields are zod's to place.
      if (!present && !defaulted) return NOT_VOUCHED;
      const value = step(input[key]);
      if (value === NOT_VOUCHED) return NOT_VOUCHED;
      if (value !== undefined || present || !optionalOut) out[key] = value;
    }
    return out;
  };
}

/** A primitive step: the type test, then every check must hold. */
function typed(isType: (v: unknown) => boolean, checks: ((v: never) => boolean)[]): Step {
  return (v) => {
    if (!isType(v)) return NOT_VOUCHED;
    for (const check of checks) if (!check(v as never)) return NOT_VOUCHED;
    return v;
  };
}

/**
 * The schema's checks as predicates that hold only where zod's check passes. Every check is applied
 * whatever its `when` says: a skipped check can only make zod accept more.
 */
function checksOf(def: Record<string, unknown>, path: string): ((v: never) => boolean)[] {
  return ((def.checks ?? []) as Internals[]).map((check) => {
    const c = check._zod.def;
    switch (c.check) {
      case "max_length": {
        // zod counts code points, never more than UTF-16 units.
        const max = c.maximum as number;
        return (s: string) => s.length <= max;
      }
      case "min_length": {
        // At least twice the floor in UTF-16 units is at least the floor in code points; nearer the
        // floor the count is in doubt, and zod decides.
        const min = c.minimum as number;
        return (s: string) => s.length >= 2 * min;
      }
      case "string_format":
        if (c.format !== "regex" || !(c.pattern instanceof RegExp)) break;
        return (s: string) => {
          const pattern = c.pattern as RegExp;
          pattern.lastIndex = 0;
          return pattern.test(s);
        };
      case "custom": {
        const fn = c.fn as (v: unknown) => unknown;
        return (v: unknown) => {
          const ok = fn(v);
          return !(ok instanceof Promise) && Boolean(ok);
        };
      }
      case "number_format":
        if (c.format !== "safeint") break;
        return (n: number) => Number.isSafeInteger(n);
      case "greater_than":
      case "less_than": {
        const bound = c.value;
        if (typeof bound !== "number") break;
        const inclusive = c.inclusive === true;
        if (c.check === "greater_than") return inclusive ? (n: number) => n >= bound : (n: number) => n > bound;
        return inclusive ? (n: number) => n <= bound : (n: number) => n < bound;
      }
    }
    throw new UncompilableSchema(`${path}: the ${String(c.check)} check is not compiled; extend workers/ingest/compiled-schema.ts or parse it with zod`);
  });
}
