import { describe, expect, it } from 'vitest';

import { combinedClient } from './combined';

const LINE = '203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "POST /mcp/tools/memory_stats HTTP/1.1" 401 35';

describe('the client of an nginx combined line', () => {
  it('reads the referer and user agent from the last two quoted fields', () => {
    expect(combinedClient(`${LINE} "https://example.org/a?b=1" "curl/8.5.0"`), 'referer first, then the user agent, as nginx writes them').toEqual({
      referer: 'https://example.org/a?b=1',
      userAgent: 'curl/8.5.0',
    });
    expect(
      combinedClient(`203.0.113.7 - alice smith [23/Nov/2026:02:41:57 +0000] "GET / HTTP/1.1" 200 - "-" "Mozilla/5.0 (X11; Linux x86_64)"`),
      'a user name with a space and "-" bytes still make a combined line, and the spaces in a user agent are kept',
    ).toEqual({ referer: null, userAgent: 'Mozilla/5.0 (X11; Linux x86_64)' });
  });

  it('undoes the escapes nginx writes, so a quote in a user agent does not end it', () => {
    const client = combinedClient(`${LINE} "-" "x\\x22 \\"y\\" \\x5C caf\\xC3\\xA9 \\x1B[31m"`);
    expect(client?.userAgent, '\\x22 and \\" are quotes, \\x5C a backslash, UTF-8 bytes a character, ESC stays a control for hostText to show').toBe(
      'x" "y" \\ café \u001b[31m',
    );
    expect(combinedClient(`${LINE} "a \\"quoted\\" referer" "ua"`)?.referer, 'an escaped quote inside the referer does not split it').toBe('a "quoted" referer');
  });

  it('says nothing for a dash, an empty field, or a line that is not a combined line', () => {
    expect(combinedClient(`${LINE} "-" "-"`), 'nginx writes "-" when the client sent none').toEqual({ referer: null, userAgent: null });
    expect(combinedClient(`${LINE} "" ""`), 'an empty header is no header').toEqual({ referer: null, userAgent: null });
    for (const other of [
      null,
      '',
      LINE,
      `${LINE} "-"`,
      `${LINE} "-" "ua" "extra"`,
      `${LINE} "-" "unterminated`,
      'INFO:     127.0.0.1:58196 - "GET /health HTTP/1.1" 200 OK',
      '{"time":"2026-11-23T02:41:57+00:00","http_user_agent":"curl"}',
      'Nov 23 02:41:57 host sshd[1]: "a" "b"',
      `203.0.113.7 - - [23/Nov/2026:02:41:57 +0000] "GET / HTTP/1.1" 2 35 "-" "ua"`,
    ]) {
      expect(combinedClient(other), `not a combined line, so no user agent is made up: ${JSON.stringify(other)}`).toBeNull();
    }
  });

  it('reads a long hostile line in linear time', () => {
    const long = `${LINE} "-" "${'\\"'.repeat(30_000)}`;
    const started = performance.now();
    expect(combinedClient(long), 'an unterminated quote is no combined line').toBeNull();
    expect(performance.now() - started, 'a 64 KiB line cannot stall the detail').toBeLessThan(200);
  });
});
