// The client's own words in an nginx combined access line: the referer and the user agent, the
// last two quoted fields of
//   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
// Whoever sends the request writes both, so what is read here is attacker-controlled host text:
// it is decoded (nginx writes `"`, `\` and bytes outside printable ASCII as \xHH) and must still
// be shown through `hostText`.

/** What a combined line says about its client; each is null when the line has a `-` or nothing. */
export interface CombinedClient {
  referer: string | null;
  userAgent: string | null;
}

type Token = { kind: 'bare' | 'bracket' | 'quoted'; text: string };

/** Split a line into bare words, `[bracketed]` and `"quoted"` fields (with backslash escapes
 * inside quotes), in one pass. Null when a bracket or quote is never closed. */
function tokens(line: string): Token[] | null {
  const out: Token[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < n && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (j >= n) return null;
      out.push({ kind: 'quoted', text: line.slice(i + 1, j) });
      i = j + 1;
    } else if (c === '[') {
      const j = line.indexOf(']', i + 1);
      if (j < 0) return null;
      out.push({ kind: 'bracket', text: line.slice(i + 1, j) });
      i = j + 1;
    } else {
      let j = i;
      while (j < n && line[j] !== ' ' && line[j] !== '\t') j++;
      out.push({ kind: 'bare', text: line.slice(i, j) });
      i = j;
    }
  }
  return out;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** A quoted field as the client sent it: `\xHH` bytes (UTF-8 when they form it, U+FFFD when
 * not), `\"` and `\\` undone. */
function unescape(field: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < field.length; ) {
    const c = field[i]!;
    const hex = c === '\\' && field[i + 1] === 'x' ? /^[0-9a-fA-F]{2}$/.exec(field.slice(i + 2, i + 4)) : null;
    if (hex) {
      bytes.push(parseInt(hex[0], 16));
      i += 4;
    } else if (c === '\\' && i + 1 < field.length) {
      bytes.push(...encoder.encode(field[i + 1]!));
      i += 2;
    } else {
      const cp = field.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...encoder.encode(ch));
      i += ch.length;
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

function value(field: Token): string | null {
  const text = unescape(field.text);
  return text === '' || text === '-' ? null : text;
}

/**
 * The referer and user agent of an nginx combined line, or null when `raw` is not one (another
 * log's line, a truncated line, nothing at all). Only a line of the combined shape counts, so a
 * quoted field of some other format is never called a user agent.
 */
export function combinedClient(raw: string | null | undefined): CombinedClient | null {
  if (!raw) return null;
  const t = tokens(raw.replace(/^\uFEFF/, '').replace(/[\r\n]+$/, ''));
  if (!t || t.length < 9) return null;
  // $remote_user may hold spaces: the time is the first bracketed field after address and ident.
  const at = t.findIndex((tok, i) => i >= 3 && tok.kind === 'bracket');
  if (at < 0 || t.length !== at + 6) return null;
  const [request, status, bytes, referer, agent] = t.slice(at + 1) as [Token, Token, Token, Token, Token];
  const shaped =
    t.slice(0, at).every((tok) => tok.kind === 'bare') &&
    request.kind === 'quoted' &&
    status.kind === 'bare' &&
    /^\d{3}$/.test(status.text) &&
    bytes.kind === 'bare' &&
    /^(\d+|-)$/.test(bytes.text) &&
    referer.kind === 'quoted' &&
    agent.kind === 'quoted';
  if (!shaped) return null;
  return { referer: value(referer), userAgent: value(agent) };
}
