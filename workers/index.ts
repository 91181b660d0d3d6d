import { app } from "./app.ts";
import { scheduled } from "./scheduled.ts";

export { ClientCounter } from "../durable-objects/client-counter.ts";
export { Overview } from "../durable-objects/overview.ts";

export default {
  fetch: app.fetch,
  scheduled,
} satisfies ExportedHandler<Env>;
