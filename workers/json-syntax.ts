/**
 * What is wrong with text that `JSON.parse` refused, without the text: V8's message quotes the input
 * around the fault (`Unexpected token 'N', ..."4321","x":NaN}" is not valid JSON`), and these
 * messages go back into dead letters' reasons, which the admin list shows without their (personal)
 * input. The position, or the one character at fault, says as much.
 */
export function jsonSyntaxError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const position = /\bposition (\d+)/.exec(message)?.[1];
  if (position !== undefined) return `not valid JSON at position ${position}`;
  if (/end of (JSON )?input/i.test(message)) return "not valid JSON: it ends too early";
  const token = /^Unexpected token '(.)'/.exec(message)?.[1];
  return token !== undefined ? `not valid JSON: unexpected '${token}'` : "not valid JSON";
}
