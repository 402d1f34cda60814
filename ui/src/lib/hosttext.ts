// Text that comes from hosts (log lines, addresses, paths, user agents, hostnames, file
// names, what agents report) is attacker-controlled. Rendering it as text keeps it from
// becoming markup; this keeps it from rearranging the console's own words around it. A
// right-to-left override (U+202E) in a path would otherwise reverse the rest of the line,
// labels included ("key" reads "yek"), and a newline or an invisible character can fake or hide
// what a line says. Each such character is shown as a visible escape, `<U+202E>`, so the
// operator sees that it was there and what it was.

/**
 * The characters shown as escapes:
 * - C0 controls except the tab, DEL and C1 controls (a newline in a log field is forged);
 * - bidirectional formatting: ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI;
 * - invisible separators and spaces: line and paragraph separators, zero-width space, word
 *   joiner and the invisible operators, the byte order mark (zero-width no-break space).
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const HIDDEN = /[\u0000-\u0008\u000A-\u001F\u007F-\u009F\u061C\u200B\u200E\u200F\u2028-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/g;

/** `U+202E` for a character. */
function codePoint(ch: string): string {
  return `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Host text made safe to show among the console's words: every bidi, control and invisible
 * character replaced by a visible `<U+XXXX>`. Null and undefined become ''. */
export function hostText(text: string | null | undefined): string {
  if (text === null || text === undefined) return '';
  return text.replace(HIDDEN, (ch) => `<${codePoint(ch)}>`);
}

/** Whether `text` holds a character `hostText` would escape. */
export function hasHidden(text: string | null | undefined): boolean {
  if (!text) return false;
  HIDDEN.lastIndex = 0;
  return HIDDEN.test(text);
}

/** Several host strings, each made safe, joined. */
export function hostList(items: readonly (string | null | undefined)[], separator = ', '): string {
  return items.map(hostText).join(separator);
}
