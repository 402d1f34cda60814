// An IP address as the operator types it for a firewall block: one IPv4 or IPv6 address, as
// the core parses it (Rust's `IpAddr`), checked as typed so the confirmation never offers to
// block something that is not an address.

/** Why `text` is not one IP address, in words; null when it is one. */
export function addressProblem(text: string): string | null {
  const ip = text.trim();
  if (!ip) return 'type the address to block, such as 203.0.113.7 or 2001:db8::7';
  if (/\s/.test(ip)) return 'one address at a time: it holds a space';
  if (ip.includes('/')) return 'one address, not a network: blocks are per address';
  if (ip.startsWith('[') || ip.includes('%')) return 'the address alone, without brackets or a zone (%eth0)';
  if (ip.includes(':')) return ipv6Problem(ip);
  if (/^[\d.]+$/.test(ip)) return ipv4Problem(ip);
  return `"${ip}" is not an IP address: write it as 203.0.113.7 or 2001:db8::7`;
}

function ipv4Problem(ip: string): string | null {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => p === '')) return 'an IPv4 address has four numbers separated by dots, such as 203.0.113.7';
  for (const p of parts) {
    if (p.length > 1 && p.startsWith('0')) return `${p}: no leading zeros in an IPv4 address`;
    if (Number(p) > 255) return `${p}: each number of an IPv4 address is 0 to 255`;
  }
  return null;
}

function ipv6Problem(ip: string): string | null {
  const wrong = 'not an IPv6 address: up to eight groups of 1 to 4 hex digits, such as 2001:db8::7';
  const halves = ip.split('::');
  if (halves.length > 2) return `${wrong} ("::" at most once)`;
  const groups = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...tail];
  // An IPv4 address may end an IPv6 one (::ffff:192.0.2.1); it counts as two groups.
  const last = all[all.length - 1] ?? '';
  let count = all.length;
  if (last.includes('.')) {
    if (ipv4Problem(last) !== null) return wrong;
    all.pop();
    count += 1;
  }
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return wrong;
  if (halves.length === 2 ? count > 7 : count !== 8) return wrong;
  return null;
}
