import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import type { AppEnv } from "./app-env.ts";
import { notFound, onError } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { admin } from "./routes/admin.ts";
import { auth } from "./routes/auth.ts";
import { clientsApi } from "./routes/clients.ts";
import { health } from "./routes/health.ts";
import { ingest } from "./routes/ingest.ts";
import { webhooks } from "./routes/webhooks.ts";

/** The HTTP API (DESIGN.md). Static dashboard assets are served before this by the assets binding. */
export const app = new Hono<AppEnv>();

app.use(async (c, next) => {
  c.set("requestId", c.req.header("cf-ray") ?? crypto.randomUUID());
  c.set("db", drizzle(c.env.DB));
  await next();
});

app.route("/health", health);
app.get("/v1/openapi.json", (c) => c.json(openApiDocument(new URL(c.req.url).origin)));
app.route("/v1/webhooks", webhooks);
app.route("/v1/ingest", ingest);
app.route("/v1", auth);
app.route("/v1/clients", clientsApi);
app.route("/v1/admin", admin);

app.onError(onError);
app.notFound(notFound);
