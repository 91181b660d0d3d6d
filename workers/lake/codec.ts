import type { CompressionCodec } from "hyparquet";
import { zstdCompressSync, zstdDecompressSync } from "node:zlib";

/**
 * Lake files are ZSTD (zstd's default level 3): on the event mix they come out 2.3× smaller than
 * SNAPPY in the same CPU time (hyparquet-writer's SNAPPY is JavaScript; numbers in docs/lake.md).
 * node:zlib's zstd is synchronous, as hyparquet-writer needs, and exists in workerd under nodejs_compat.
 */
export const LAKE_CODEC: CompressionCodec = "ZSTD";

export const compressors = {
  ZSTD: (input: Uint8Array): Uint8Array => zstdCompressSync(input),
};

export const decompressors = {
  ZSTD: (input: Uint8Array): Uint8Array => zstdDecompressSync(input),
};
