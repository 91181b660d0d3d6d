import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import type { AppEnv } from "./app-env.ts";
import { dashboardCors } from "./cors.ts";
import { notFound, onError } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { routeMethods } from "./route-methods.ts";
import { apiSecureHeaders, bindingsGuard, defaultBodyLimit, noStore, productionGuard, requestLog } from "./security.ts";
import { admin } from "./routes/admin/index.ts";
import { auth } from "./routes/auth.ts";
import { billing } from "./routes/billing.ts";
import { clientsApi } from "./routes/clients.ts";
import { files } from "./routes/files.ts";
import { health } from "./routes/health.ts";
import { ingest } from "./routes/ingest.ts";
import { live } from "./routes/live.ts";
import { reports } from "./routes/reports.ts";
import { webhooks } from "./routes/webhooks.ts";

/** The HTTP API (DESIGN.md). Static dashboard assets are served before this by the assets binding. */
export const app = new Hono<AppEnv>();

// Headers first: the answers of the guard and the body limit below (a 503, a 413) carry them too,
// CORS included, or a dashboard on another origin sees a network error instead of the answer.
app.use(requestLog, apiSecureHeaders);
app.use("/v1/*", dashboardCors, noStore);
app.use("/health", noStore);
app.use(bindingsGuard, productionGuard, defaultBodyLimit, async (c, next) => {
  c.set("db", drizzle(c.env.DB));
  await next();
});

app.route("/health", health);
app.get("/v1/openapi.json", (c) => c.json(openApiDocument(new URL(c.req.url).origin)));
app.route("/v1/webhooks", webhooks);
app.route("/v1/ingest", ingest);
app.route("/v1", auth);
app.route("/v1", live);
app.route("/v1/clients", clientsApi);
app.route("/v1/clients", reports);
app.route("/v1/admin", admin);
app.route("/v1/billing", billing);
app.route("/v1/files", files);

app.onError(onError);
const methodsAt = routeMethods(app.routes);
app.notFound((c) => notFound(c, methodsAt(c.req.path)));
