import { sql, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";

/**
 * `column IN (values)` with the values bound as one JSON parameter: D1 allows 100 bound parameters
 * a statement, and a viewer's clients or a client's phone numbers run to thousands.
 */
export function inJsonList(column: SQLiteColumn, values: readonly string[]): SQL {
  return sql`${column} IN (SELECT value FROM json_each(${JSON.stringify(values)}))`;
}
