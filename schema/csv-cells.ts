const NEEDS_QUOTES = /[",\r\n]/;
const NEEDS_QUOTES_SEMICOLON = /[";\r\n]/;
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One RFC 4180 field: quoted only when it holds a quote, the separator or a line break; quotes
 * doubled. The separator is a comma but in files for spreadsheets of locales whose decimal mark is
 * the comma (pt-BR), which separate with `;`.
 */
export function quoteField(text: string, separator: "," | ";" = ","): string {
  return (separator === "," ? NEEDS_QUOTES : NEEDS_QUOTES_SEMICOLON).test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Text for a CSV a person opens in a spreadsheet: a leading = + - @ (or tab, CR) gets a `'`, so the
 * spreadsheet shows the cell instead of running it as a formula (CSV injection). Machine-read files
 * keep their text as it is.
 */
export function defuseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}
