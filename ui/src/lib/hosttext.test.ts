import { describe, expect, it } from 'vitest';

import { holdsHidden } from '../fakes';
import { hasHidden, hostList, hostText } from './hosttext';

/** What an attacker can put in a path or a user agent: a right-to-left override that would
 * reverse "key" after it, a forged second log line, a bell, an invisible isolate. */
const HOSTILE = '/login\u202E yek\u202C\nGET /admin 200\u0007\u2066\u200B';

describe('host text', () => {
  it('shows every bidi and control character of a hostile string as a visible escape', () => {
    expect(hostText(HOSTILE), 'each hidden character is named where it was').toBe(
      '/login<U+202E> yek<U+202C><U+000A>GET /admin 200<U+0007><U+2066><U+200B>',
    );
  });

  it('leaves nothing that could reorder or hide the console\'s own words', () => {
    const shown = hostText(HOSTILE);
    expect(holdsHidden(shown), 'no bidi, control or invisible character is left').toBe(false);
    expect(shown.includes('\n'), 'not even the forged line break').toBe(false);
  });

  it('escapes each kind of direction control, and the invisible separators', () => {
    const all = ['\u061C', '\u200E', '\u200F', '\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069'];
    for (const ch of all) expect(hostText(`a${ch}b`), `U+${ch.codePointAt(0)!.toString(16)} is a direction control`).toMatch(/^a<U\+[0-9A-F]{4}>b$/);
    expect(hostText('a\u2028b\u2029c\uFEFFd\u2060e'), 'line and paragraph separators, BOM and word joiner').toBe('a<U+2028>b<U+2029>c<U+FEFF>d<U+2060>e');
    expect(hostText('a\u0000b\u001Bc\u007Fd\u0085e'), 'NUL, ESC, DEL and a C1 control').toBe('a<U+0000>b<U+001B>c<U+007F>d<U+0085>e');
  });

  it('leaves ordinary text alone: tabs, accents, other scripts, emoji', () => {
    for (const text of ['GET /api/v1/memories 200', 'a\tb', 'Zoë, Łódź', 'مرحبا', '東京', '🔑 key']) {
      expect(hostText(text), `${text} is shown as it came`).toBe(text);
      expect(hasHidden(text), `${text} holds nothing hidden`).toBe(false);
    }
  });

  it('says whether a string holds anything it would escape, however often it is asked', () => {
    expect(hasHidden(HOSTILE), 'the hostile string does').toBe(true);
    expect(hasHidden(HOSTILE), 'and still does when asked again (no regex state carried over)').toBe(true);
    expect(hasHidden(null), 'nothing holds nothing').toBe(false);
  });

  it('turns null into empty text and escapes each item of a list', () => {
    expect(hostText(null), 'null shows as nothing').toBe('');
    expect(hostText(undefined), 'and so does undefined').toBe('');
    expect(hostList(['sekha\u202Eorp', 'rae-1']), 'each item escaped, then joined').toBe('sekha<U+202E>orp, rae-1');
  });
});
