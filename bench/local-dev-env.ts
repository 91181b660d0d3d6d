/**
 * Local-only developer tooling of wrangler/miniflare that production does not run: the local
 * explorer and the local observability collector, which records a trace of every request into
 * SQLite and costs more CPU than the Worker itself under load. Imported first, because
 * scripts/local-stack.ts captures the environment for its children when it loads.
 */
process.env.X_LOCAL_OBSERVABILITY = "false";
process.env.X_LOCAL_EXPLORER = "false";
