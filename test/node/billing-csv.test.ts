import { describe, expect, it } from "vitest";
import { billingCsv } from "../../workers/billing/files.ts";
import type { BillingLine } from "../../schema/billing.ts";

const line = (over: Partial<BillingLine>): BillingLine => ({
  client_id: "acme",
  client_name: "Acme",
  category: "marketing",
  country: "BR",
  billable_count: 2,
  unit_price_micros: 62_500,
  amount_micros: 125_000,
  currency: "BRL",
  ...over,
});

describe("billing CSV", () => {
  it("defuses and quotes text finance's spreadsheet would run as a formula, and leaves numbers alone", () => {
    const csv = billingCsv("2026-11-03", 1, [line({ client_name: '=HYPERLINK("http://x")' }), line({ client_id: "b", client_name: "-1, plus @" })]);
    expect(csv.split("\r\n").slice(1, 3)).toEqual([
      `2026-11-03,1,acme,"'=HYPERLINK(""http://x"")",marketing,BR,2,62500,125000,BRL`,
      `2026-11-03,1,b,"'-1, plus @",marketing,BR,2,62500,125000,BRL`,
    ]);
  });
});
