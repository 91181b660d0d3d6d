import { Bool, Dictionary, Field, Int32, Schema, Table, TimestampMillisecond, Utf8, tableFromIPC, tableToIPC, type DataType } from "apache-arrow";
import type { SchemaElement } from "hyparquet";
import { describe, expect, it } from "vitest";
import { ARROW_SCHEMA } from "../../workers/lake/arrow-schema.ts";
import { LAKE_SCHEMA } from "../../workers/lake/columns.ts";

/** The Arrow type a lake column is read as: client_id a dictionary of strings, as pyarrow types a hive partition. */
function arrowType(e: SchemaElement): DataType {
  if (e.name === "client_id") return new Dictionary(new Utf8(), new Int32());
  switch (e.type) {
    case "BYTE_ARRAY":
      return new Utf8();
    case "INT64":
      return new TimestampMillisecond("UTC");
    case "BOOLEAN":
      return new Bool();
    case "INT32":
      return new Int32();
    default:
      throw new Error(`no Arrow type for ${e.name}`);
  }
}

/** The schema message of an empty Arrow IPC stream of the lake's columns, as `ARROW:schema` holds it (base64). */
function arrowSchemaOfLake(): string {
  const fields = LAKE_SCHEMA.slice(1).map((e) => new Field(e.name, arrowType(e), e.repetition_type === "OPTIONAL"));
  const stream = tableToIPC(new Table(new Schema(fields)), "stream");
  // The stream is the schema message, then 8 bytes of end-of-stream marker.
  return Buffer.from(stream.subarray(0, stream.length - 8)).toString("base64");
}

describe("the Arrow schema every lake file carries", () => {
  it("is the lake's Parquet schema, read as Arrow (regenerate ARROW_SCHEMA from this test when columns change)", () => {
    expect(ARROW_SCHEMA.value).toBe(arrowSchemaOfLake());
  });

  it("reads back as the canonical columns, in order, with their nullability", () => {
    const eos = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    const { schema } = tableFromIPC(new Uint8Array([...Buffer.from(ARROW_SCHEMA.value, "base64"), ...eos]));
    expect(schema.fields.map((f) => `${f.name}:${f.type}${f.nullable ? "?" : ""}`)).toEqual(
      LAKE_SCHEMA.slice(1).map((e) => `${e.name}:${String(arrowType(e))}${e.repetition_type === "OPTIONAL" ? "?" : ""}`),
    );
    expect(schema.fields.find((f) => f.name === "client_id")!.type.toString()).toBe("Dictionary<Int32, Utf8>");
  });
});
