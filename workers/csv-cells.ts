const NEEDS_QUOTES = /[",\r\n]/;
const FORMULA_START = /^[=+\-@\t\r]/;

/** One RFC 4180 field: quoted only when it holds a quote, comma or line break; quotes doubled. */
export function quoteField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Text for a CSV a person opens in a spreadsheet: a leading = + - @ (or tab, CR) gets a `'`, so the
 * spreadsheet shows the cell instead of running it as a formula (CSV injection). Machine-read files
 * keep their text as it is.
 */
export function defuseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}
