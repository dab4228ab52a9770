import { expect } from 'chai';
import {
  canonicalAddr, familyOf, firstAddr, formatAddr, formatIp6, formatPrefix, lastAddr, nthAddr, parseAddr, parseCidr, parseIp, parseIp6,
  parsePrefix, prefixContains, prefixSize, prefixesOverlap, subnet, subprefix, formatCidr, networkPrefix,
} from '../../src/net/ipnet.js';

const p = (text: string) => {
  const r = parsePrefix(text);
  if (!r) throw new Error(`${text} did not parse`);
  return r;
};

describe('IPv6 text', () => {
  const good: [string, string][] = [
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fd00::', 'fd00::'],
    ['FD00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longest run wins
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [input, out] of good) {
    it(`${input} → ${out}`, () => {
      const v = parseIp6(input);
      expect(v, input).to.not.equal(undefined);
      expect(formatIp6(v!)).to.equal(out);
      expect(parseIp6(out)).to.equal(v); // the canonical form reads back to the same value
    });
  }

  for (const bad of ['', ':', ':::', '1:::2', '1::2::3', '12345::', 'g::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', ':1::', '1::2:', '1.2.3.4::', '::1.2.3', '::1.2.3.256', 'fe80::1%eth0', '10.0.0.1']) {
    it(`refuses ${JSON.stringify(bad)}`, () => expect(parseIp6(bad)).to.equal(undefined));
  }

  it('values are the 128-bit numbers', () => {
    expect(parseIp6('::1')).to.equal(1n);
    expect(parseIp6('8000::')).to.equal(1n << 127n);
    expect(parseIp6('::ffff:ffff')).to.equal(0xffffffffn);
  });
});

describe('addresses of either family', () => {
  it('tells the family and keeps IPv4 and IPv4-mapped IPv6 apart', () => {
    expect(familyOf('10.0.0.1')).to.equal(4);
    expect(familyOf('fd00::1')).to.equal(6);
    expect(familyOf('nonsense')).to.equal(undefined);
    expect(parseAddr('10.0.0.1')).to.deep.equal({ family: 4, value: 0x0a000001n });
    expect(parseAddr('::10.0.0.1')).to.deep.equal({ family: 6, value: 0x0a000001n });
    expect(formatAddr(parseAddr('10.0.0.1')!)).to.equal('10.0.0.1');
    expect(canonicalAddr('FD00:0::0:2')).to.equal('fd00::2');
  });

  it('parses prefixes of both families and refuses lengths past the family', () => {
    expect(p('10.10.0.0/16')).to.deep.equal({ family: 4, ip: 0x0a0a0000n, prefix: 16 });
    expect(p('fd00:10::/64')).to.deep.equal({ family: 6, ip: 0xfd000010n << 96n, prefix: 64 });
    expect(parsePrefix('10.0.0.0/33')).to.equal(undefined);
    expect(parsePrefix('fd00::/129')).to.equal(undefined);
    expect(parsePrefix('fd00::/1000')).to.equal(undefined);
    expect(parsePrefix('fd00::')).to.equal(undefined);
    expect(parsePrefix('fd00::/64/1')).to.equal(undefined);
    expect(parsePrefix('fd00::/-1')).to.equal(undefined);
    expect(formatPrefix(p('FD00:0:0:0::7/64'))).to.equal('fd00::7/64');
  });

  it('first and last addresses, the network', () => {
    expect(formatAddr({ family: 6, value: firstAddr(p('fd00:1:2:3:4::9/64')) })).to.equal('fd00:1:2:3::');
    expect(formatAddr({ family: 6, value: lastAddr(p('fd00:1:2:3::/64')) })).to.equal('fd00:1:2:3:ffff:ffff:ffff:ffff');
    expect(formatAddr({ family: 6, value: lastAddr(p('::/0')) })).to.equal('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
    expect(formatAddr({ family: 6, value: firstAddr(p('fd00::1/128')) })).to.equal('fd00::1');
    expect(formatAddr({ family: 4, value: lastAddr(p('10.1.2.3/24')) })).to.equal('10.1.2.255');
    expect(formatPrefix(networkPrefix(p('fd00::1:2/112')))).to.equal('fd00::1:0/112');
  });

  it('contains: the prefix boundaries, and never across families', () => {
    const net = p('fd00:10:0:1::/64');
    expect(prefixContains(net, parseAddr('fd00:10:0:1::')!)).to.equal(true);
    expect(prefixContains(net, parseAddr('fd00:10:0:1:ffff:ffff:ffff:ffff')!)).to.equal(true);
    expect(prefixContains(net, parseAddr('fd00:10:0:2::')!)).to.equal(false);
    expect(prefixContains(net, parseAddr('fd00:10:0:0:ffff:ffff:ffff:ffff')!)).to.equal(false);
    expect(prefixContains(p('::/0'), parseAddr('10.0.0.1')!)).to.equal(false);
    expect(prefixContains(p('0.0.0.0/0'), parseAddr('::1')!)).to.equal(false);
    expect(prefixContains(p('0.0.0.0/0'), parseAddr('10.0.0.1')!)).to.equal(true);
  });

  it('overlap within a family only', () => {
    expect(prefixesOverlap(p('fd00::/48'), p('fd00:0:0:5::/64'))).to.equal(true);
    expect(prefixesOverlap(p('fd00:0:0:5::/64'), p('fd00::/48'))).to.equal(true);
    expect(prefixesOverlap(p('fd00::/64'), p('fd00:0:0:1::/64'))).to.equal(false);
    expect(prefixesOverlap(p('::/0'), p('0.0.0.0/0'))).to.equal(false);
  });

  it('subprefix: the nth /64 of a /48 and the nth /24 of a /16 agree with the IPv4 API', () => {
    expect(formatPrefix(subprefix(p('fd00:10::/48'), 64, 0))).to.equal('fd00:10::/64');
    expect(formatPrefix(subprefix(p('fd00:10::/48'), 64, 1))).to.equal('fd00:10:0:1::/64');
    expect(formatPrefix(subprefix(p('fd00:10::/48'), 64, 0xffff))).to.equal('fd00:10:0:ffff::/64');
    expect(formatPrefix(subprefix(p('fd00:10::/56'), 80, 0x10001))).to.equal('fd00:10:0:1:1::/80');
    expect(() => subprefix(p('fd00:10::/48'), 64, 0x10000)).to.throw(RangeError);
    expect(() => subprefix(p('fd00:10::/48'), 40, 0)).to.throw(RangeError);
    expect(() => subprefix(p('fd00:10::/48'), 129, 0)).to.throw(RangeError);
    for (const i of [0, 1, 7, 255]) {
      expect(formatPrefix(subprefix(p('10.10.0.0/16'), 24, i))).to.equal(formatCidr(subnet(parseCidr('10.10.0.0/16')!, 24, i)));
    }
  });

  it('nthAddr counts from the first address; the size of a prefix', () => {
    expect(formatAddr(nthAddr(p('fd00::/64'), 1))).to.equal('fd00::1');
    expect(formatAddr(nthAddr(p('fd00::/64'), 0xffffn))).to.equal('fd00::ffff');
    expect(formatAddr(nthAddr(p('fd00::/64'), (1n << 64n) - 1n))).to.equal('fd00::ffff:ffff:ffff:ffff');
    expect(() => nthAddr(p('fd00::/64'), 1n << 64n)).to.throw(RangeError);
    expect(() => nthAddr(p('fd00::/64'), -1)).to.throw(RangeError);
    expect(formatAddr(nthAddr(p('10.0.0.0/24'), 254))).to.equal('10.0.0.254');
    expect(prefixSize(p('fd00::/64'))).to.equal(1n << 64n);
    expect(prefixSize(p('10.0.0.0/24'))).to.equal(256n);
    expect(prefixSize(p('fd00::1/128'))).to.equal(1n);
  });

  it('the IPv4 API is unchanged', () => {
    expect(parseIp('10.0.0.1')).to.equal(0x0a000001);
    expect(parseIp('fd00::1')).to.equal(undefined);
    expect(parseCidr('fd00::/64')).to.equal(undefined);
  });
});
