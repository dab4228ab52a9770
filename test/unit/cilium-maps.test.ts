// The byte layouts the agent writes into the BPF maps (bpf/common.h), and the
// per-node pod CIDRs the installer hands out.
import { expect } from 'chai';
import { endianness } from 'node:os';
import {
  decodeCounters,
  decodeEndpointInfo,
  decodeIpv4,
  decodeRemoteKey,
  encodeEndpointInfo,
  encodeIpv4,
  encodeNodeConfig,
  encodeIpv6,
  encodePrefixKey,
  encodeRemoteKey,
  encodeRemoteKey6,
  encodeRemoteNode6,
  ZERO_COUNTERS,
} from '../../src/datapaths/cilium/maps.js';
import { nodePodCidrs } from '../../src/datapaths/cilium/install.js';
import { parseLab } from '../../src/datapaths/index.js';
import { hex, u32 } from '../helpers/bytes.js';


describe('cilium map encoding', () => {
  it('an IPv4 key is the four address bytes in network order', () => {
    expect(hex(encodeIpv4('10.10.0.2'))).to.equal('0a0a0002');
    expect(hex(encodeIpv4('192.168.10.220'))).to.equal('c0a80adc');
    expect(decodeIpv4(encodeIpv4('10.10.1.77'))).to.equal('10.10.1.77');
  });

  it('refuses what is not an IPv4 address, quoting it', () => {
    expect(() => encodeIpv4('10.10.0.256')).to.throw('"10.10.0.256" is not an IPv4 address');
    expect(() => encodeIpv4('fe80::1')).to.throw(/not an IPv4 address/);
  });

  it('endpoint_info: ifindex in host order, then the pod MAC, then the lxc MAC (16 bytes)', () => {
    const b = encodeEndpointInfo({ ifindex: 0x1234, mac: '5e:61:5e:3a:08:c5', nodeMac: '12:7C:8C:AE:D6:2C' });
    expect(b.length).to.equal(16);
    expect(hex(b)).to.equal(u32(0x1234) + '5e615e3a08c5' + '127c8caed62c');
    expect(decodeEndpointInfo(b)).to.deep.equal({ ifindex: 0x1234, mac: '5e:61:5e:3a:08:c5', nodeMac: '12:7c:8c:ae:d6:2c' });
  });

  it('refuses a malformed MAC', () => {
    expect(() => encodeEndpointInfo({ ifindex: 1, mac: '5e:61:5e:3a:08', nodeMac: '12:7c:8c:ae:d6:2c' })).to.throw('"5e:61:5e:3a:08" is not a MAC address');
    expect(() => encodeEndpointInfo({ ifindex: 1, mac: '5e:61:5e:3a:08:zz', nodeMac: '12:7c:8c:ae:d6:2c' })).to.throw(/not a MAC/);
  });

  it('remote_key: the LPM prefix length in host order, then the network address', () => {
    const b = encodeRemoteKey('10.10.1.0/24');
    expect(hex(b)).to.equal(u32(24) + '0a0a0100');
    expect(decodeRemoteKey(b)).to.equal('10.10.1.0/24');
    expect(() => encodeRemoteKey('10.10.1.0')).to.throw('"10.10.1.0" is not a CIDR');
  });

  it('endpoint_counters: four 64-bit counters, rx then tx', () => {
    expect(ZERO_COUNTERS.length).to.equal(32);
    const b = Buffer.alloc(32);
    const write = (off: number, v: bigint) => (endianness() === 'LE' ? b.writeBigUInt64LE(v, off) : b.writeBigUInt64BE(v, off));
    write(0, 3n);
    write(8, 294n);
    write(16, 5n);
    write(24, 2n ** 40n);
    expect(decodeCounters(new Uint8Array(b))).to.deep.equal({ rxPackets: 3, rxBytes: 294, txPackets: 5, txBytes: 2 ** 40 });
  });

  it('node_config: mode, tunnel ifindex, VNI', () => {
    expect(hex(encodeNodeConfig({ mode: 'native', tunnelIfindex: 0, vni: 1 }))).to.equal(u32(0) + u32(0) + u32(1));
    expect(hex(encodeNodeConfig({ mode: 'vxlan', tunnelIfindex: 7, vni: 42 }))).to.equal(u32(1) + u32(7) + u32(42));
  });
});

describe('cilium pod CIDRs per node', () => {
  const nodes = [
    { name: 'master', address: '192.168.10.210' },
    { name: 'worker', address: '192.168.10.220' },
  ];

  it('carves /24s from the pod network in node order', () => {
    expect(nodePodCidrs('10.10.0.0/16', 24, nodes)).to.deep.equal([
      { name: 'master', address: '192.168.10.210', podCIDR: '10.10.0.0/24' },
      { name: 'worker', address: '192.168.10.220', podCIDR: '10.10.1.0/24' },
    ]);
  });

  it('dual-stack: an IPv6 /64 per node beside the /24, and the node\'s IPv6 underlay address when it has one', () => {
    const dual = [{ ...nodes[0], addressV6: 'fd00:192:168:10::210' }, { ...nodes[1], addressV6: 'fd00:192:168:10::220' }];
    expect(nodePodCidrs('10.10.0.0/16', 24, dual, { podCIDR: 'fd00:10::/48', subnetLen: 64 })).to.deep.equal([
      { name: 'master', address: '192.168.10.210', podCIDR: '10.10.0.0/24', podCIDRv6: 'fd00:10::/64', addressV6: 'fd00:192:168:10::210' },
      { name: 'worker', address: '192.168.10.220', podCIDR: '10.10.1.0/24', podCIDRv6: 'fd00:10:0:1::/64', addressV6: 'fd00:192:168:10::220' },
    ]);
    expect(() => nodePodCidrs('10.10.0.0/16', 24, nodes, { podCIDR: 'fd00:10::/64', subnetLen: 64 })).to.throw('fd00:10::/64 holds too few /64 subnets for 2 nodes');
  });

  it('says when the pod network has too few subnets for the nodes', () => {
    expect(() => nodePodCidrs('10.10.0.0/24', 24, nodes)).to.throw('10.10.0.0/24 holds only 1 /24 subnets for 2 nodes');
    expect(() => nodePodCidrs('10.10.0.0/24', 16, nodes)).to.throw(/subnetLen \/16 is larger than the pod network/);
  });
});

describe('cilium IPv6 map encoding', () => {
  it('an IPv6 key is the sixteen address bytes in network order', () => {
    expect(hex(encodeIpv6('fd00:10::2'))).to.equal('fd000010000000000000000000000002');
    expect(hex(encodeIpv6('fd00:192:168:10::220'))).to.equal('fd000192016800100000000000000220');
    expect(() => encodeIpv6('10.10.0.2')).to.throw('"10.10.0.2" is not an IPv6 address');
  });

  it('struct remote_key6: prefix length in host order, then the network address (20 bytes)', () => {
    const k = encodeRemoteKey6('fd00:10:0:1::/64');
    expect(k.length).to.equal(20);
    expect(hex(k.subarray(0, 4))).to.equal(u32(64));
    expect(hex(k.subarray(4))).to.equal('fd000010000000010000000000000000');
    expect(() => encodeRemoteKey6('10.10.1.0/24')).to.throw(/not an IPv6 CIDR/);
  });

  it('a prefix key by its family: ipcache (8 bytes) or ipcache6 (20 bytes)', () => {
    expect(encodePrefixKey('10.10.0.2/32').length).to.equal(8);
    expect(encodePrefixKey('fd00:10::2/128').length).to.equal(20);
  });

  it('struct remote_node6: the IPv6 underlay address (zero when the node has none), then the IPv4 one', () => {
    expect(hex(encodeRemoteNode6('192.168.10.220', 'fd00:192:168:10::220'))).to.equal('fd000192016800100000000000000220' + 'c0a80adc');
    expect(hex(encodeRemoteNode6('192.168.10.220'))).to.equal('0'.repeat(32) + 'c0a80adc');
  });
});

describe('cilium lab files', () => {
  const lab = (backend: string) => `name: x
description: x
mode: route
topology:
  underlay: 192.168.10.0/24
  nodes: [{ name: master, address: 192.168.10.210 }]
network:
  plugin: cilium
  podCIDR: 10.10.0.0/16
  backend: ${backend}
`;

  it('accepts the native and vxlan datapaths', () => {
    expect(parseLab(lab('native'), 'x.yaml').network.backend).to.equal('native');
    expect(parseLab(lab('vxlan'), 'x.yaml').network.backend).to.equal('vxlan');
  });

  it('dual-stack native routing needs an IPv6 underlay; vxlan carries IPv6 pods over the IPv4 one', () => {
    const dual = (backend: string) => lab(backend) + '  podCIDRv6: fd00:10::/48\n';
    expect(parseLab(dual('vxlan'), 'x.yaml').network.podCIDRv6).to.equal('fd00:10::/48');
    expect(() => parseLab(dual('native'), 'x.yaml')).to.throw(/^x\.yaml:\d+: topology\.underlayV6: cilium routes IPv6 pods natively .* or use backend: vxlan/);
  });

  it('names the file, line and field of an unknown datapath', () => {
    expect(() => parseLab(lab('geneve'), 'x.yaml')).to.throw('x.yaml:10: network.backend: "geneve" is not one of native, vxlan');
  });
});
