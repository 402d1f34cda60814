// What the Add instance dialog checks as the operator types, each with the words that say
// what is wrong and how to put it right (a field that only turns red leaves them guessing).

/** The instance name becomes a DNS label in the agent's certificate
 * (`<name>.gatehouse.invalid`). */
export function nameProblem(name: string): string | null {
  if (name === '') return null;
  if (/[A-Z]/.test(name)) return 'use lower case: the name becomes a DNS label in the agent\'s certificate';
  const bad = /[^a-z0-9-]/.exec(name);
  if (bad) return `${bad[0] === ' ' ? 'a space' : `"${bad[0]}"`} cannot be in a DNS label: use a–z, 0–9 and dashes`;
  if (name.startsWith('-')) return 'start with a letter or a digit, not a dash';
  if (name.length > 40) return `at most 40 characters (this is ${name.length})`;
  return null;
}

/** The agent's address: `host:port`, an IPv6 address in brackets. */
export function addressProblem(text: string): string | null {
  const address = text.trim();
  if (address === '') return null;
  if (/\s/.test(address)) return 'no spaces: host:port, such as 10.0.0.5:7443';
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) return 'host and port only, without a scheme: such as 10.0.0.5:7443';
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(address);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(address);
  const port = v6?.[2] ?? plain?.[2];
  if (port !== undefined) return Number(port) >= 1 && Number(port) <= 65535 ? null : `port ${port}: a port is 1 to 65535`;
  if (!address.startsWith('[') && (address.match(/:/g) ?? []).length > 1) return 'put an IPv6 address in brackets, then the port: [2001:db8::5]:7443';
  if (!/:\d+$/.test(address)) return 'add the port the agent listens on: host:port, such as 10.0.0.5:7443';
  return 'write it as host:port, such as 10.0.0.5:7443 or [2001:db8::5]:7443';
}

/** The one-time code, with any line breaks a terminal put in it taken out. */
export function normalCode(code: string): string {
  return code.replace(/\s+/g, '');
}

/** The code `gatehouse-agent init` printed: `gh1.`, 32 letters and digits, a dot, 64 hex. */
export function codeProblem(text: string): string | null {
  const code = normalCode(text);
  if (code === '') return null;
  if (/^gh1\.[a-z2-7]{32}\.[0-9a-f]{64}$/.test(code)) return null;
  if (!code.startsWith('gh1.')) return 'paste the whole code from gatehouse-agent init: it starts with gh1.';
  const [, token = '', fingerprint = '', ...rest] = code.split('.');
  if (rest.length > 0) return 'one code only: paste the line gatehouse-agent init printed, once';
  if (token.length < 32 || fingerprint.length < 64) return 'the code is cut short: paste the whole code from gatehouse-agent init';
  return 'this is not a code from gatehouse-agent init: paste the whole code it printed, unchanged';
}
