/**
 * The documented local-development credentials (DESIGN.md, Security). The seed uses them; production
 * refuses to serve with any of the secrets, refuses the password at sign-in and the ingest key.
 */
export const DEV_SECRETS = {
  WHATSAPP_APP_SECRET: "dev-app-secret",
  WHATSAPP_VERIFY_TOKEN: "dev-verify-token",
  SESSION_SECRET: "dev-session-secret-change-me",
  FILE_SIGNING_SECRET: "dev-file-signing-secret",
} as const;
/**
 * The optional secrets of a rotation, each the previous value of the secret it is named after: while
 * set, it still verifies what it signed (docs/operations.md, "Rotating a secret"). Development never
 * sets them; production holds a set one to the other secrets' rules.
 */
export const PREVIOUS_SECRET_NAMES = ["SESSION_SECRET_PREVIOUS", "FILE_SIGNING_SECRET_PREVIOUS"] as const;
export const DEV_PASSWORD = "zapmeter-dev";
export const DEV_INGEST_KEY = "dev-ingest-key";
