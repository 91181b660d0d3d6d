// Secrets `npm run types` cannot declare: it names the secrets .dev.vars.example sets, and these stay
// unset there. Optional, as unset is their normal state outside a rotation (schema/dev-credentials.ts,
// PREVIOUS_SECRET_NAMES).
interface Env {
  SESSION_SECRET_PREVIOUS?: string;
  FILE_SIGNING_SECRET_PREVIOUS?: string;
}
