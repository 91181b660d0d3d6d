import { sql, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";

/*
 * Lists bound as one JSON parameter: D1 allows 100 bound parameters a statement and counts every
 * statement of a batch against a request's queries, and a viewer's clients or a client's phone
 * numbers run to thousands.
 */

/** `column IN (values)`. */
export function inJsonList(column: SQLiteColumn, values: readonly string[]): SQL {
  return sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`;
}

/** `values` as table `j` to join (`innerJoin(jsonTable(values), sql\`true\`)`): a row per value. */
export function jsonTable(values: readonly string[]): SQL {
  return sql`json_each(${JSON.stringify(values)}) AS j`;
}

/** A `jsonTable` row's value, selected as column `name`. */
export function jsonValue(name: string) {
  return sql<string>`j.value`.as(name);
}
