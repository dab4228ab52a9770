// The pure parts of the macvlan lab: the pod range split per node, the shim,
// the plugin's configuration, and what the lab file may not say.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { splitPodRange, splitPodRange6, shimCommands } from '../../src/datapaths/macvlan/install.js';
import { loadMacvlanConf } from '../../src/datapaths/macvlan/cni-plugin.js';
import { parseNetConf } from '../../src/cni/config.js';
import { labErrorMessage, cniError } from '../helpers/errors.js';

const nodes = [
  { name: 'master', address: '192.168.10.210' },
  { name: 'worker', address: '192.168.10.220' },
];

describe('macvlan: the pod range split per node', () => {
  it('gives each node its own /28 of 192.168.10.64/27, the first address to the shim', () => {
    expect(splitPodRange('192.168.10.0/24', '192.168.10.64/27', 28, nodes)).to.deep.equal([
      { node: 'master', slice: '192.168.10.64/28', shim: '192.168.10.64', rangeStart: '192.168.10.65', rangeEnd: '192.168.10.79' },
      { node: 'worker', slice: '192.168.10.80/28', shim: '192.168.10.80', rangeStart: '192.168.10.81', rangeEnd: '192.168.10.95' },
    ]);
  });

  it('never hands out an address twice: slices are disjoint', () => {
    const many = Array.from({ length: 8 }, (_, i) => ({ name: `n${i}`, address: `192.168.10.${200 + i}` }));
    const slices = splitPodRange('192.168.10.0/24', '192.168.10.64/26', 29, many);
    const taken = new Set<string>();
    for (const s of slices) {
      const last = Number(s.rangeEnd.split('.')[3]);
      for (let a = Number(s.shim.split('.')[3]); a <= last; a++) {
        expect(taken.has(`.${a}`), `.${a} handed out twice`).to.equal(false);
        taken.add(`.${a}`);
      }
    }
    expect(taken.size).to.equal(64);
  });

  it("leaves out the underlay's network and broadcast addresses", () => {
    const elsewhere = [
      { name: 'a', address: '10.0.0.1' },
      { name: 'b', address: '10.0.0.2' },
    ];
    const [first, second] = splitPodRange('192.168.10.0/24', '192.168.10.0/24', 25, elsewhere);
    expect(first.shim).to.equal('192.168.10.1');
    expect(second.rangeEnd).to.equal('192.168.10.254');
  });

  const bad: [string, string, number, RegExp][] = [
    ['a range outside the underlay', '10.10.0.0/27', 28, /podCIDR.*must be a range inside the underlay 192\.168\.10\.0\/24/],
    ['more nodes than slices', '192.168.10.64/28', 28, /holds 1 slices of \/28, but the lab has 2 nodes/],
    ['a node address inside the range', '192.168.10.192/26', 27, /node master's address 192\.168\.10\.210 lies inside the pod range/],
    ['a slice smaller than /30', '192.168.10.64/27', 31, /leaves no room for a shim and a pod/],
  ];
  for (const [what, range, len, re] of bad) {
    it(`refuses ${what}`, () => {
      let message = '';
      try {
        splitPodRange('192.168.10.0/24', range, len, nodes);
      } catch (e) {
        message = `${(e as { field: string }).field}: ${(e as Error).message}`;
      }
      expect(message).to.match(re);
    });
  }

  it('sets up the shim as a bridge-mode macvlan with a /32 and routes the slice through it', () => {
    const [master] = splitPodRange('192.168.10.0/24', '192.168.10.64/27', 28, nodes);
    expect(shimCommands(master, 'eth0').map((c) => c.join(' '))).to.deep.equal([
      'link add macvlan-shim link eth0 type macvlan mode bridge',
      'addr add 192.168.10.64/32 dev macvlan-shim',
      'link set macvlan-shim up',
      'route add 192.168.10.64/28 dev macvlan-shim',
    ]);
  });
});

describe('macvlan dual-stack: the IPv6 pod range split per node', () => {
  const dual = nodes.map((n, i) => ({ ...n, addressV6: `fd00:192:168:10::${210 + 10 * i}` }));

  it('gives each node its own /120 of the IPv6 range, the first address to the shim', () => {
    expect(splitPodRange6('fd00:192:168:10::/64', 'fd00:192:168:10::1:0/112', 120, dual)).to.deep.equal([
      { node: 'master', slice: 'fd00:192:168:10::1:0/120', shim: 'fd00:192:168:10::1:0', rangeStart: 'fd00:192:168:10::1:1', rangeEnd: 'fd00:192:168:10::1:ff' },
      { node: 'worker', slice: 'fd00:192:168:10::1:100/120', shim: 'fd00:192:168:10::1:100', rangeStart: 'fd00:192:168:10::1:101', rangeEnd: 'fd00:192:168:10::1:1ff' },
    ]);
  });

  it("leaves out the underlay's subnet-router anycast address (its first)", () => {
    const [first] = splitPodRange6('fd00:192:168:10::/64', 'fd00:192:168:10::/112', 120, [{ name: 'a', address: '10.0.0.1' }]);
    expect(first.shim).to.equal('fd00:192:168:10::1');
  });

  const bad: [string, string | undefined, string, number, RegExp][] = [
    ['no IPv6 underlay', undefined, 'fd00:192:168:10::1:0/112', 120, /podCIDRv6: .*needs topology\.underlayV6/],
    ['a range outside the IPv6 underlay', 'fd00:192:168:10::/64', 'fd00:10::/112', 120, /podCIDRv6: .*must be a range inside the IPv6 underlay fd00:192:168:10::\/64/],
    ['more nodes than slices', 'fd00:192:168:10::/64', 'fd00:192:168:10::1:0/120', 120, /subnetLenV6: .*holds 1 slices of \/120, but the lab has 2 nodes/],
    ['a node address inside the range', 'fd00:192:168:10::/64', 'fd00:192:168:10::200/120', 121, /podCIDRv6: node master's address fd00:192:168:10::210 lies inside the pod range/],
  ];
  for (const [what, underlay, range, len, re] of bad) {
    it(`refuses ${what}`, () => {
      let message = '';
      try {
        splitPodRange6(underlay ?? '', range, len, dual);
      } catch (e) {
        message = `${(e as { field: string }).field}: ${(e as Error).message}`;
      }
      expect(message).to.match(re);
    });
  }

  it('the shim gets the first IPv6 address of the slice (no DAD) and the IPv6 slice is routed through it', () => {
    const [master] = splitPodRange('192.168.10.0/24', '192.168.10.64/27', 28, nodes);
    const [master6] = splitPodRange6('fd00:192:168:10::/64', 'fd00:192:168:10::1:0/112', 120, dual);
    expect(shimCommands(master, 'eth0', master6).map((c) => c.join(' '))).to.deep.equal([
      'link add macvlan-shim link eth0 type macvlan mode bridge',
      'addr add 192.168.10.64/32 dev macvlan-shim',
      'addr add fd00:192:168:10::1:0/128 dev macvlan-shim nodad',
      'link set macvlan-shim up',
      'route add 192.168.10.64/28 dev macvlan-shim',
      'route add fd00:192:168:10::1:0/120 dev macvlan-shim',
    ]);
  });

  it('a lab file with an IPv6 pod range outside the IPv6 underlay is refused naming file, line and field', () => {
    const text = readFileSync('labs/macvlan-dual.yaml', 'utf8').replace('podCIDRv6: fd00:192:168:10::1:0/112', 'podCIDRv6: fd00:10::/112');
    expect(labErrorMessage(text)).to.match(/bad\.yaml:\d+: network\.podCIDRv6: macvlan pods live on the node network: fd00:10::\/112 must be a range inside the IPv6 underlay/);
  });
});

describe('macvlan plugin configuration', () => {
  const conf = (extra: Record<string, unknown>) => loadMacvlanConf(parseNetConf({ cniVersion: '1.0.0', name: 'mv', type: 'macvlan', ipam: { type: 'host-local' }, ...extra }));
  it('defaults to bridge mode', () => {
    expect(conf({ master: 'eth0' }).mode).to.equal('bridge');
  });
  it('names the field that is wrong', () => {
    expect(cniError(() => conf({})).message).to.match(/master: is required/);
    expect(cniError(() => conf({ master: 'eth0', mode: 'bridged' })).message).to.match(/mode: "bridged" is not one of bridge, private, vepa, passthru/);
    expect(cniError(() => conf({ master: 'a-name-far-too-long' })).message).to.match(/master: .*at most 15/);
    expect(cniError(() => loadMacvlanConf(parseNetConf({ cniVersion: '1.0.0', name: 'mv', type: 'macvlan', master: 'eth0' }))).message).to.match(/ipam: is required/);
  });
});

describe('lab file: macvlan', () => {
  const macvlan = readFileSync('labs/macvlan.yaml', 'utf8');
  const cases: [string, string, RegExp][] = [
    ['a pod range off the node network', macvlan.replace('podCIDR: 192.168.10.64/27', 'podCIDR: 10.10.0.0/27'), /bad\.yaml:\d+: network\.podCIDR: macvlan pods live on the node network: 10\.10\.0\.0\/27 must be a range inside the underlay/],
    ['a pod range too small for the nodes', macvlan.replace('subnetLen: 28', 'subnetLen: 27'), /bad\.yaml:\d+: network\.subnetLen: 192\.168\.10\.64\/27 holds 1 slices of \/27, but the lab has 2 nodes/],
  ];
  for (const [what, text, re] of cases) {
    it(`names file, line and field for ${what}`, () => {
      expect(labErrorMessage(text)).to.match(re);
    });
  }
});
