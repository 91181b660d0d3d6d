import { app } from "./app.ts";

export { ClientCounter } from "../durable-objects/client-counter.ts";

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
