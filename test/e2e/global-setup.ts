import { rmSync } from "node:fs";
import type { TestProject } from "vitest/node";
import { buildPages } from "../../scripts/dashboard-build.ts";
import { freePort, freshStateDir, prepareLocalState, startWrangler, type RunningStack } from "../../scripts/local-stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    stateDir: string;
  }
}

let stack: RunningStack | undefined;
let stateDir: string | undefined;

/**
 * One real `wrangler dev` for the e2e run, on a free port, with fresh migrated and seeded local state,
 * serving a dashboard built from the sources as they are (a build left from earlier would test old pages).
 */
export async function setup(project: TestProject): Promise<void> {
  buildPages();
  stateDir = freshStateDir("zapmeter-e2e-");
  await prepareLocalState(stateDir);
  stack = await startWrangler({ port: await freePort(), persistTo: stateDir, log: process.env.E2E_LOG ? "inherit" : "ignore" });
  project.provide("baseUrl", stack.url);
  project.provide("stateDir", stateDir);
}

export async function teardown(): Promise<void> {
  await stack?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
}
