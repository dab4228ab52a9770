import { expect } from 'chai';
import {
  addressBody,
  bridgeBody,
  hairpinBody,
  ifinfomsg,
  ipBytes,
  message,
  NLM_F,
  parseLink,
  routeBody,
  RTM,
  vethBody,
  attr,
  str,
  u32,
  IFLA,
} from '../../src/net/netlink.js';

// What `ip` (iproute2 6.x) sent for the same requests, as `strace -e write=all`
// dumped them. Link 1641 was a bridge cn-d0, link 1643 the veth cn-v1, fd 4
// the container's namespace; ip's sequence number was 0x6b0de6b4.
const IP_SENT: Record<string, string> = {
  'addr add 10.1.2.3/24 dev cn-d0':
    '2800000014000506b4e60d6b000000000218000069060000080002000a010203080001000a010203',
  'addr replace fd00::1/64 dev cn-d0 nodad':
    '4000000014000505b4e60d6b000000000a4002006906000014000200fd00000000000000000000000000000114000100fd000000000000000000000000000001',
  'route add 10.9.0.0/16 via 10.1.2.1 dev cn-d0':
    '3400000018000506b4e60d6b0000000002100000fe03000100000000080001000a090000080005000a0102010800040069060000',
  'route add default via 10.1.2.1 dev cn-d0':
    '2c00000018000506b4e60d6b0000000002000000fe03000100000000080005000a0102010800040069060000',
  'route add 10.8.0.0/16 dev cn-d0':
    '2c00000018000506b4e60d6b0000000002100000fe03fd0100000000080001000a0800000800040069060000',
  'route add fd01::/64 via fd00::2 dev cn-d0':
    '4c00000018000506b4e60d6b000000000a400000fe0300010000000014000100fd01000000000000000000000000000014000500fd0000000000000000000000000000020800040069060000',
  'link set dev cn-d0 up':
    '2000000010000500b4e60d6b0000000000000000690600000100000001000000',
  'link add cn-b1 mtu 1400 up type bridge':
    '4400000010000506b4e60d6b000000000000000000000000010000000100000008000400780500000a000300636e2d6231000000100012000a0001006272696467650000',
  'link add cn-v1 address 02:00:00:00:00:03 mtu 1500 master cn-d0 up type veth peer name eth1 address 02:00:00:00:00:04 mtu 1500 netns cn-t2':
    '9400000010000506b4e60d6b00000000000000000000000001000000010000000a000100020000000003000008000400dc05000008000a00690600000a000300636e2d76310000004c0012000800010076657468400002003c000100000000000000000000000000000000000a000100020000000004000008000400dc05000008001c0004000000090003006574683100000000',
  'link set dev cn-v1 type bridge_slave hairpin on':
    '4000000010000500b4e60d6b00000000000000006b060000000000000000000020001200100001006272696467655f736c6176650c0005000500040001000000',
};

/** Ours with ip's sequence number, as hex. */
const ours = (type: number, flags: number, body: Buffer[]) => message(type, flags, 0x6b0de6b4, ...body).toString('hex');
const hex = (b: Buffer) => b.toString('hex');
const REQ_ACK = NLM_F.REQUEST | NLM_F.ACK;
const CREATE = REQ_ACK | NLM_F.CREATE | NLM_F.EXCL;

describe('rtnetlink encoding, byte for byte what ip sends', () => {
  it('addresses: IPv4, and IPv6 replaced without DAD', () => {
    expect(ours(RTM.NEWADDR, CREATE, addressBody(1641, '10.1.2.3/24'))).to.equal(IP_SENT['addr add 10.1.2.3/24 dev cn-d0']);
    expect(ours(RTM.NEWADDR, REQ_ACK | NLM_F.CREATE | NLM_F.REPLACE, addressBody(1641, 'fd00::1/64', true))).to.equal(IP_SENT['addr replace fd00::1/64 dev cn-d0 nodad']);
  });

  it('routes: via a gateway, the default, on-link (scope link), IPv6', () => {
    expect(ours(RTM.NEWROUTE, CREATE, routeBody({ dst: '10.9.0.0/16', gw: '10.1.2.1', index: 1641 }))).to.equal(IP_SENT['route add 10.9.0.0/16 via 10.1.2.1 dev cn-d0']);
    expect(ours(RTM.NEWROUTE, CREATE, routeBody({ dst: '0.0.0.0/0', gw: '10.1.2.1', index: 1641 }))).to.equal(IP_SENT['route add default via 10.1.2.1 dev cn-d0']);
    expect(ours(RTM.NEWROUTE, CREATE, routeBody({ dst: '10.8.0.0/16', index: 1641 }))).to.equal(IP_SENT['route add 10.8.0.0/16 dev cn-d0']);
    expect(ours(RTM.NEWROUTE, CREATE, routeBody({ dst: 'fd01::/64', gw: 'fd00::2', index: 1641 }))).to.equal(IP_SENT['route add fd01::/64 via fd00::2 dev cn-d0']);
  });

  it('links: up, a new bridge, a veth pair with its peer in another namespace, hairpin on a port', () => {
    expect(ours(RTM.NEWLINK, REQ_ACK, [ifinfomsg({ index: 1641, flags: 1, change: 1 })])).to.equal(IP_SENT['link set dev cn-d0 up']);
    expect(ours(RTM.NEWLINK, CREATE, bridgeBody('cn-b1', 1400))).to.equal(IP_SENT['link add cn-b1 mtu 1400 up type bridge']);
    const veth = vethBody({ name: 'cn-v1', mac: '02:00:00:00:00:03', mtu: 1500, master: 1641 }, { name: 'eth1', mac: '02:00:00:00:00:04', mtu: 1500, netnsFd: 4 });
    // ip brings the peer up only when told to; we leave it down at creation too.
    expect(ours(RTM.NEWLINK, CREATE, veth)).to.equal(
      IP_SENT['link add cn-v1 address 02:00:00:00:00:03 mtu 1500 master cn-d0 up type veth peer name eth1 address 02:00:00:00:00:04 mtu 1500 netns cn-t2'],
    );
    expect(ours(RTM.NEWLINK, REQ_ACK, hairpinBody(1643))).to.equal(IP_SENT['link set dev cn-v1 type bridge_slave hairpin on']);
  });

  it('reads back a link answer: index, flags, name, MTU, MAC, kind, master', () => {
    const info = attr(IFLA.LINKINFO, attr(1, str('veth')));
    const mac = attr(IFLA.ADDRESS, Buffer.from([2, 0, 0, 0, 0, 0x0a]));
    const msg = message(RTM.NEWLINK, 0, 1, ifinfomsg({ index: 7, flags: 0x1003 }), attr(IFLA.IFNAME, str('eth0')), attr(IFLA.MTU, u32(1400)), mac, attr(IFLA.MASTER, u32(3)), info);
    expect(parseLink(msg)).to.deep.equal({ index: 7, flags: 0x1003, name: 'eth0', mtu: 1400, address: '02:00:00:00:00:0a', kind: 'veth', master: 3 });
  });

  it('parses IPv4 and IPv6 addresses, and refuses what is neither', () => {
    expect(hex(ipBytes('fd00::1').bytes)).to.equal('fd000000000000000000000000000001');
    expect(hex(ipBytes('::ffff:10.0.0.1').bytes)).to.equal('00000000000000000000ffff0a000001');
    expect(hex(ipBytes('2001:db8:0:0:1:0:0:1').bytes)).to.equal('20010db8000000000001000000000001');
    expect(ipBytes('10.0.0.1').family).to.equal(2);
    for (const bad of ['10.0.0', '10.0.0.256', 'fd00::1::2', 'fd00:zz::1']) expect(() => ipBytes(bad), bad).to.throw(/not an IPv/);
  });
});
