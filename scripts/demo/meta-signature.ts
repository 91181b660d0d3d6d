import { createHmac } from "node:crypto";

/** `X-Hub-Signature-256` of a raw webhook body, as Meta signs it with the app secret. */
export function metaSignature(body: string, appSecret: string): string {
  return `sha256=${createHmac("sha256", appSecret).update(body).digest("hex")}`;
}
