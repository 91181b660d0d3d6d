import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ROOT, buildPages, freePort, freshStateDir, prepareLocalState, startWrangler, type RunningStack } from "../../scripts/local-stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    stateDir: string;
  }
}

let stack: RunningStack | undefined;
let stateDir: string | undefined;

/** One real `wrangler dev` for the e2e run, on a free port, with fresh migrated and seeded local state. */
export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(join(ROOT, "pages", "dist", "index.html"))) buildPages();
  stateDir = freshStateDir("zapmeter-e2e-");
  prepareLocalState(stateDir);
  stack = await startWrangler({ port: await freePort(), persistTo: stateDir, log: process.env.E2E_LOG ? "inherit" : "ignore" });
  project.provide("baseUrl", stack.url);
  project.provide("stateDir", stateDir);
}

export async function teardown(): Promise<void> {
  await stack?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
}
