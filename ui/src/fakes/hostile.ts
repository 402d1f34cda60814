// Attacker-controlled text for tests of what hosts send: a right-to-left override that would
// reverse the console's words after it ("key" reads "yek"), a forged line break, a bell and an
// invisible isolate. Every view must show it with visible escapes (`<U+202E>`), never raw.

export const HOSTILE = 'evil\u202E yek\u202C\n\u0007\u2066';

/** The same, as `hostText` shows it. */
export const HOSTILE_SHOWN = 'evil<U+202E> yek<U+202C><U+000A><U+0007><U+2066>';

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const RAW = /[\u0000-\u0008\u000A-\u001F\u007F-\u009F\u061C\u200B\u200E\u200F\u2028-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/;

/** Whether rendered text still holds a bidi, control or invisible character. Whitespace the
 * markup itself puts between elements (newlines of the template) is not host text, so only
 * the characters a template never writes are looked for: everything but the newline. */
export function holdsHidden(text: string | null | undefined): boolean {
  return RAW.test((text ?? '').replaceAll('\n', ''));
}
