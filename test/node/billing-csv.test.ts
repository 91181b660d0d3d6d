import { describe, expect, it } from "vitest";
import { billingSheet } from "../../pages/src/billing-sheet.ts";
import { microsAsDecimal } from "../../pages/src/money.ts";
import { billingCsv } from "../../workers/billing/files.ts";
import type { BillingLine } from "../../schema/billing.ts";

const line = (over: Partial<BillingLine> = {}): BillingLine => ({
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

describe("the billing page's spreadsheet", () => {
  it("writes micros as exact decimals: at least two places, at most six, no thousands separators", () => {
    expect(microsAsDecimal(187_500, ",")).toBe("0,1875");
    expect(microsAsDecimal(1_234_560_000, ",")).toBe("1234,56");
    expect(microsAsDecimal(0, ".")).toBe("0.00");
    expect(microsAsDecimal(1, ".")).toBe("0.000001");
    expect(microsAsDecimal(9_007_199_254_740_991, ".")).toBe("9007199254.740991");
    expect(microsAsDecimal(-2_500_000, ",")).toBe("-2,50");
  });

  it("opens as a table in pt-BR Excel: BOM, semicolons, decimal commas, titled columns, CRLF", () => {
    const sheet = billingSheet(
      "2026-11-30",
      3,
      [line(), line({ client_id: "beta", client_name: 'Beta; Filial "Sul"', amount_micros: 1_000_000_000 }), line({ client_id: "gama", client_name: "Gama; Norte" })],
      "pt-BR",
      (c) => ({ marketing: "Marketing" })[c] ?? c,
    );
    expect(sheet.startsWith("\uFEFF")).toBe(true);
    expect(sheet.slice(1).split("\r\n")).toEqual([
      "data;revisão;id do cliente;cliente;categoria;país;mensagens cobradas;preço unitário;valor;moeda",
      "2026-11-30;3;acme;Acme;Marketing;BR;2;0,0625;0,125;BRL",
      '2026-11-30;3;beta;"Beta; Filial ""Sul""";Marketing;BR;2;0,0625;1000,00;BRL',
      '2026-11-30;3;gama;"Gama; Norte";Marketing;BR;2;0,0625;0,125;BRL',
      "",
    ]);
  });

  it("uses commas and decimal points for English, and defuses text a spreadsheet would run", () => {
    const sheet = billingSheet("2026-11-30", 1, [line({ client_name: '=HYPERLINK("http://x")', amount_micros: 1_500_000 })], "en", () => "Marketing");
    const [header, row] = sheet.slice(1).split("\r\n");
    expect(header).toBe("date,revision,client id,client,category,country,billable messages,unit price,amount,currency");
    expect(row).toBe(`2026-11-30,1,acme,"'=HYPERLINK(""http://x"")",Marketing,BR,2,0.0625,1.50,BRL`);
  });
});
