import { expect } from "vitest";
import type { BillingResponse, BillingRunResponse } from "../../schema/billing.ts";
import { admin, authed, call, ingestKey, postEvents, postJson } from "./helpers.ts";

/** A bridged status event of one message; billable marketing to Brazil unless overridden. */
export function status(clientId: string, messageId: string, statusName: string, occurredAt: number, over: Record<string, unknown> = {}) {
  return {
    event_id: `${messageId}:${statusName}`,
    message_id: messageId,
    client_id: clientId,
    status: statusName,
    occurred_at: occurredAt,
    recipient: "5511987654321",
    category: "marketing",
    billable: true,
    pricing_type: "regular",
    country: "BR",
    ...over,
  };
}

let key: Promise<string> | undefined;
export async function ingest(events: unknown[]): Promise<void> {
  key ??= ingestKey();
  const res = await postEvents(events, await key);
  expect(res.status).toBe(200);
  expect(((await res.json()) as { rejected: unknown[] }).rejected).toEqual([]);
}

export async function rateCard(card: { client_id: string | null; category: string; country: string; unit_price_micros: number; currency?: string; valid_from?: string }) {
  const res = await postJson("/v1/admin/rate-cards", { currency: "BRL", ...card }, await admin(), "PUT");
  expect(res.status).toBe(200);
}

export async function runDay(date: string, token?: string): Promise<BillingRunResponse> {
  const res = await call(`/v1/billing/${date}/run`, authed(token ?? (await admin()), { method: "POST" }));
  expect(res.status).toBe(200);
  return (await res.json()) as BillingRunResponse;
}

export async function billingOf(date: string, clientId?: string, token?: string): Promise<BillingResponse> {
  const q = clientId ? `&client_id=${clientId}` : "";
  const res = await call(`/v1/billing?date=${date}${q}`, authed(token ?? (await admin())));
  expect(res.status).toBe(200);
  return (await res.json()) as BillingResponse;
}

/** Downloads the day's file through a fresh signed link, as finance would. */
export async function downloadBytes(date: string, format: "csv" | "parquet", token?: string): Promise<Uint8Array> {
  const res = await call(`/v1/billing/${date}/download?format=${format}`, authed(token ?? (await admin())));
  expect(res.status).toBe(200);
  const { url } = (await res.json()) as { url: string };
  const file = await call(new URL(url).pathname + new URL(url).search);
  expect(file.status).toBe(200);
  return new Uint8Array(await file.arrayBuffer());
}
