import { microsAsDecimal } from "./money.ts";
import type { BillingLine } from "../../schema/billing.ts";
import { defuseFormula, quoteField } from "../../schema/csv-cells.ts";

/** How a spreadsheet of the locale reads a CSV: its separator, its decimal mark and the column titles. */
const DIALECTS = {
  "pt-BR": {
    separator: ";",
    decimal: ",",
    header: ["data", "revisão", "id do cliente", "cliente", "categoria", "país", "mensagens cobradas", "preço unitário", "valor", "moeda"],
  },
  en: {
    separator: ",",
    decimal: ".",
    header: ["date", "revision", "client id", "client", "category", "country", "billable messages", "unit price", "amount", "currency"],
  },
} as const;

export type SheetLocale = keyof typeof DIALECTS;

/**
 * A day's billing lines as a CSV that opens as a table in a spreadsheet of `locale` with a double
 * click: a UTF-8 BOM (else accented names come out garbled), the locale's separator (pt-BR Excel
 * splits on `;`), amounts in currency units with its decimal mark, titled columns, categories by the
 * names the page shows (`categoryName`), and text defused against formulas. The machine-readable file
 * (`billing.csv`: commas, micros, category codes) stays the download's.
 */
export function billingSheet(
  date: string,
  revision: number,
  lines: readonly BillingLine[],
  locale: SheetLocale,
  categoryName: (category: string) => string,
): string {
  const { separator, decimal, header } = DIALECTS[locale];
  const text = (v: string) => quoteField(defuseFormula(v), separator);
  const rows = lines.map((l) =>
    [
      date,
      String(revision),
      text(l.client_id),
      text(l.client_name),
      text(categoryName(l.category)),
      l.country,
      String(l.billable_count),
      microsAsDecimal(l.unit_price_micros, decimal),
      microsAsDecimal(l.amount_micros, decimal),
      l.currency,
    ].join(separator),
  );
  return `\uFEFF${[header.map((h) => quoteField(h, separator)).join(separator), ...rows].join("\r\n")}\r\n`;
}
