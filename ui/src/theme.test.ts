// @vitest-environment node
// The stylesheet's colours, checked as numbers: what a screenshot would show a person.
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

const css = readFileSync(new URL('./app.css', import.meta.url), 'utf8');

/** The custom properties of the first rule whose selector starts with `selector`. */
function variables(selector: string): Record<string, string> {
  const start = css.indexOf(selector);
  expect(start, `${selector} is in the stylesheet`).toBeGreaterThanOrEqual(0);
  const body = css.slice(css.indexOf('{', start) + 1, css.indexOf('}', start));
  return Object.fromEntries([...body.matchAll(/(--[\w-]+):\s*([^;]+);/g)].map((m) => [m[1]!, m[2]!.trim()]));
}

function luminance(hex: string): number {
  const channels = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const [r, g, b] = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

describe('placeholders', () => {
  const light = variables(':root {');
  const dark = { ...light, ...variables(":root[data-theme='dark']") };
  const darkBySystem = { ...light, ...variables(":root:not([data-theme='light'])") };

  it('are styled apart from typed values: their own colour, italic', () => {
    const rule = /::placeholder\s*\{([^}]*)\}/.exec(css)?.[1] ?? '';
    expect(rule, 'placeholders take their own colour').toMatch(/color:\s*var\(--placeholder\)/);
    expect(rule, 'and are italic, which no typed value is').toMatch(/font-style:\s*italic/);
    expect(rule, 'at full opacity, so the colour is what shows').toMatch(/opacity:\s*1/);
  });

  for (const [theme, colours] of [['light', light], ['dark', dark], ['dark by the system', darkBySystem]] as const) {
    it(`are readable yet visibly dimmer than typed text in the ${theme} theme`, () => {
      const placeholder = colours['--placeholder']!;
      expect(placeholder, `${theme} defines a placeholder colour`).toMatch(/^#[0-9a-f]{6}$/i);
      expect(contrast(placeholder, colours['--panel']!), 'readable on a panel (WCAG AA, 4.5:1)').toBeGreaterThanOrEqual(4.5);
      expect(contrast(placeholder, colours['--bg']!), 'and on the page background').toBeGreaterThanOrEqual(4.5);
      expect(contrast(placeholder, colours['--text']!), 'far from the colour of typed text').toBeGreaterThanOrEqual(2.5);
    });
  }
});
