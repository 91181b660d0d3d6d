import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { accessLogSampleRate } from "../../workers/security.ts";
import { call } from "./helpers.ts";

/** The access-log lines written while `run` ran. */
async function linesDuring(run: () => Promise<unknown>): Promise<{ path: string; status: number }[]> {
  const log = vi.spyOn(console, "info");
  await run();
  const lines = log.mock.calls.map((args) => String(args[0])).filter((l) => l.includes('"event":"request"'));
  log.mockRestore();
  return lines.map((l) => JSON.parse(l) as { path: string; status: number });
}

describe("access log", () => {
  afterEach(() => vi.restoreAllMocks());

  it("logs every failed request, with its status and path only", async () => {
    vi.spyOn(Math, "random").mockReturnValue(0.999);
    const lines = await linesDuring(() => call("/v1/clients?secret=x"));
    expect(lines).toEqual([expect.objectContaining({ path: "/v1/clients", status: 401 })]);
  });

  it("logs a successful request only when it falls in the sample", async () => {
    expect(accessLogSampleRate(env)).toBe(0.01);
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    expect(await linesDuring(() => call("/health"))).toEqual([]);
    vi.spyOn(Math, "random").mockReturnValue(0.001);
    expect(await linesDuring(() => call("/health"))).toEqual([expect.objectContaining({ path: "/health", status: 200 })]);
  });

  it("reads the sample rate as a share in [0, 1], and logs everything when it is not one", () => {
    const rate = (v: string) => accessLogSampleRate({ ...env, ACCESS_LOG_SAMPLE_RATE: v });
    expect([rate("0"), rate("0.25"), rate("1")]).toEqual([0, 0.25, 1]);
    expect([rate(""), rate("lots"), rate("2"), rate("-1")]).toEqual([1, 1, 1, 1]);
  });
});
