// The Worker's tsconfig has no @types/node; these are the only node:zlib calls the lake makes
// (available at runtime under the nodejs_compat flag).
declare module "node:zlib" {
  export function zstdCompressSync(data: Uint8Array): Uint8Array;
  export function zstdDecompressSync(data: Uint8Array): Uint8Array;
}
