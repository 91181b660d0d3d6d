import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { devVar } from "../../scripts/dev-vars.ts";
import { freePort } from "../../scripts/local-stack.ts";
import { NODE, cleanup, readPid, sandbox, waitFor } from "./script-sandbox.ts";

/**
 * The scripts that sign webhooks for the local Worker (npm start's demo traffic, the chaos sender)
 * must read .dev.vars as wrangler dev binds it: with dotenv, so quotes, inline comments, `export `
 * and spaces around `=` are not part of a value.
 */
describe(".dev.vars values as wrangler dev binds them", () => {
  it("drops quotes, inline comments, `export ` and the spaces around `=`", () => {
    const dir = mkdtempSync(join(tmpdir(), "zapmeter-dev-vars-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, ".dev.vars");
    writeFileSync(
      file,
      ['# local secrets', 'DOUBLE="my local secret"', "SINGLE='single # not a comment'", "COMMENTED=plain # a comment", "export EXPORTED=exported", "SPACED = spaced ", ""].join("\n"),
    );
    expect(["DOUBLE", "SINGLE", "COMMENTED", "EXPORTED", "SPACED"].map((name) => devVar(name, file))).toEqual([
      "my local secret",
      "single # not a comment",
      "plain",
      "exported",
      "spaced",
    ]);
    expect(() => devVar("ABSENT", file)).toThrow(/ABSENT missing/);
  });

  it("npm start's demo traffic signs with the secret wrangler binds from a quoted value", async () => {
    const dir = sandbox();
    writeFileSync(join(dir, ".dev.vars"), `${readFileSync(join(dir, ".dev.vars.example"), "utf8").replace(/^WHATSAPP_APP_SECRET=.*$/m, 'WHATSAPP_APP_SECRET="my local secret"')}\n`);
    const pidFile = join(dir, "fake-wrangler.pid");
    const sigLog = join(dir, "signatures.log");
    const port = await freePort();
    const start = spawn(NODE, [join(dir, "scripts", "start.ts")], {
      env: { ...process.env, PORT: String(port), FAKE_PID_FILE: pidFile, FAKE_SIG_LOG: sigLog, FAKE_APP_SECRET: "my local secret" },
      stdio: "ignore",
    });
    onTestFinished(() => cleanup(dir, [start.pid, readPid(pidFile)]));
    const checked = () => (existsSync(sigLog) ? readFileSync(sigLog, "utf8").split("\n").filter(Boolean) : []);
    expect(await waitFor(() => checked().length >= 3, 20_000)).toBe(true);
    expect(checked().filter((r) => r === "bad")).toEqual([]);
  });
});
