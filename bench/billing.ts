/** Time of one billing run (`POST /v1/billing/:date/run`) over every seeded client. */
import { request } from "node:http";
import type { BenchStack } from "./stack.ts";
import { round, since } from "./stats.ts";

export interface BillingFigures {
  date: string;
  clients: number;
  lines: number;
  run_s: number;
}

/** node:http rather than fetch: a 10,000-client run on one local thread can outlast fetch's 300 s header timeout. */
function post(url: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

export async function benchBilling(stack: BenchStack, date: string): Promise<BillingFigures> {
  const t = performance.now();
  const res = await post(`${stack.url}/v1/billing/${date}/run`, stack.token);
  const ms = since(t);
  if (res.status !== 200) throw new Error(`billing run: ${res.status} ${res.body}`);
  const body = JSON.parse(res.body) as { clients: number; lines: number };
  return { date, clients: body.clients, lines: body.lines, run_s: round(ms / 1000, 3) };
}
