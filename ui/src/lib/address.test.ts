import { describe, expect, it } from 'vitest';

import { addressProblem } from './address';

describe('an address to block', () => {
  it('takes one IPv4 or IPv6 address, as the core parses them', () => {
    for (const ip of ['203.0.113.7', '0.0.0.0', '255.255.255.255', '2001:db8::7', '::1', '::', 'fe80::1:2:3:4', '2001:DB8:0:0:0:0:0:1', '::ffff:192.0.2.1', ' 198.51.100.4 ']) {
      expect(addressProblem(ip), `${ip} is an address`).toBeNull();
    }
  });

  it('says what is wrong with what is not one address', () => {
    expect(addressProblem(''), 'empty: what to type').toMatch(/type the address/);
    expect(addressProblem('example.com'), 'a name is not an address').toMatch(/not an IP address/);
    expect(addressProblem('203.0.113.300'), 'a number too big').toMatch(/0 to 255/);
    expect(addressProblem('203.0.113'), 'three numbers').toMatch(/four numbers/);
    expect(addressProblem('203.0.113.07'), 'a leading zero, which the core refuses').toMatch(/leading zeros/);
    expect(addressProblem('203.0.113.0/24'), 'a network').toMatch(/not a network/);
    expect(addressProblem('203.0.113.7 198.51.100.4'), 'two addresses').toMatch(/one address at a time/);
    expect(addressProblem('[2001:db8::7]'), 'brackets').toMatch(/without brackets/);
    expect(addressProblem('fe80::1%eth0'), 'a zone').toMatch(/zone/);
    for (const ip of ['2001:db8::7::1', '2001:db8:1:2:3:4:5:6:7', '2001:db8:1:2:3:4:5', 'gggg::1', '12345::1', '1:2:3:4:5:6:7::8']) {
      expect(addressProblem(ip), `${ip} is not an IPv6 address`).toMatch(/not an IPv6 address/);
    }
  });
});
