import { Hono } from "hono";
import { SignedFileQuery } from "../../schema/billing.ts";
import type { AppEnv } from "../app-env.ts";
import { ApiError } from "../errors.ts";
import { fileKeys } from "../auth/signing-keys.ts";
import { FILES_PATH, verifyFileUrl } from "../files/signed-urls.ts";

/** `GET /v1/files/<key>?exp=&sig=`: streams an R2 object to whoever holds a valid signed link. */
export const files = new Hono<AppEnv>();

files.get("/:key{.+}", async (c) => {
  const denied = (message: string) => new ApiError(403, "invalid_link", message);
  const query = SignedFileQuery.safeParse(c.req.query());
  if (!query.success) throw denied("the link lacks a valid exp or sig");
  let key: string;
  try {
    key = decodeURIComponent(new URL(c.req.url).pathname.slice(FILES_PATH.length));
  } catch {
    throw denied("the link's path is malformed");
  }
  const verdict = await verifyFileUrl(fileKeys(c.env), key, query.data.exp, query.data.sig, Date.now());
  if (verdict === "bad_signature") throw denied("the link's signature does not match");
  if (verdict === "not_issued") throw denied("no link is issued for this file or for this long");
  if (verdict === "expired") throw denied("the link has expired; ask for a new one");
  const object = await c.env.LAKE.get(key);
  if (!object) throw new ApiError(404, "file_not_found", "the file no longer exists");
  const headers = new Headers();
  object.writeHttpMetadata(headers);
  headers.set("etag", object.httpEtag);
  headers.set("content-length", String(object.size));
  headers.set("cache-control", "private, no-store");
  return new Response(object.body, { headers });
});
