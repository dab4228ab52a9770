// Differential test: the reference bridge + host-local (Debian's
// containernetworking-plugins) and ours, given the same config, must leave the
// same state in the container and print results of the same shape.
import { expect } from 'chai';
import { Ip } from '../../src/net/ip.js';
import { natRules } from '../../src/net/iptables.js';
import { BRIDGE, GATEWAY, OUR_PLUGINS, REFERENCE_PLUGINS, Sandbox, referencePair } from '../helpers/cni-sandbox.js';

/** What a container sees of its network, without what is random per run (MACs, ifindexes). */
async function containerState(netns: string) {
  const ip = new Ip(netns);
  const links = await ip.addrs();
  return {
    links: links
      .map((l) => ({
        name: l.ifname,
        up: l.flags.includes('UP'),
        mtu: l.mtu,
        // Link-local IPv6 addresses derive from the random MAC: left out.
        addresses: (l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen} ${a.scope}`),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    kinds: (await ip.links()).map((l) => `${l.ifname}:${l.linkinfo?.info_kind ?? ''}`).sort(),
    routes: [...(await ip.routes()), ...(await ip.routes6())]
      .filter((r) => !r.dst.startsWith('fe80:') && !r.dst.startsWith('ff00:'))
      .map((r) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, scope: r.scope, protocol: r.protocol })),
  };
}

/** What the node's side looks like: the bridge's addresses and the port's settings. */
async function nodeState(box: Sandbox, hostVeth: string) {
  const [bridge] = await box.nodeIp.addrs(BRIDGE);
  const port = await box.nodeIp.link(hostVeth);
  return {
    bridgeAddresses: bridge.addr_info!.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
    port: { master: port?.master, mtu: port?.mtu, hairpin: port?.linkinfo?.info_slave_data?.hairpin },
  };
}

/** The NAT rules, chain names (hashes of different inputs) and comments (the reference quotes the values) made alike. */
async function masq(box: Sandbox, family: 4 | 6) {
  return (await natRules(box.node, family)).map((r) => r.replace(/CNI-[0-9a-f]{24}/g, 'CNI-*').replace(/ -m comment --comment ".*" -j/, ' -j')).filter((r) => r.includes('CNI-'));
}

/** The result with every value replaced by its type: same keys, same nesting, same list lengths. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  return typeof v;
}

/** The result's values with what is random per run (veth names, MACs, namespace paths) taken out. */
function values(result: any) {
  return {
    ...result,
    interfaces: result.interfaces.map((i: Record<string, string>) => ({ ...i, name: i.name.replace(/^veth[0-9a-f]{8}$/, 'veth*'), mac: 'mac', ...(i.sandbox ? { sandbox: 'netns' } : {}) })),
  };
}

const V6 = 'fd00:250::/64';
const configs: Record<string, { extra: Record<string, unknown>; ips: { address: string; gateway: string }[] }> = {
  'no routes': { extra: {}, ips: [{ address: '10.250.0.2/24', gateway: GATEWAY }] },
  'isDefaultGateway and an ipam route': {
    extra: { isDefaultGateway: true, ipam: { routes: [{ dst: '10.251.0.0/16' }] } },
    ips: [{ address: '10.250.0.2/24', gateway: GATEWAY }],
  },
  'IPv6 only, isDefaultGateway and an ipam route': {
    extra: { isDefaultGateway: true, ipam: { ranges: [[{ subnet: V6 }]], routes: [{ dst: 'fd00:251::/64' }] } },
    ips: [{ address: 'fd00:250::2/64', gateway: 'fd00:250::1' }],
  },
  'dual-stack, isDefaultGateway, a route per family': {
    extra: { isDefaultGateway: true, ipam: { ranges: [[{ subnet: '10.250.0.0/24' }], [{ subnet: V6 }]], routes: [{ dst: '10.251.0.0/16' }, { dst: 'fd00:251::/64' }] } },
    ips: [
      { address: '10.250.0.2/24', gateway: GATEWAY },
      { address: 'fd00:250::2/64', gateway: 'fd00:250::1' },
    ],
  },
  'dual-stack without hairpin (the reference waits for DAD), no gateway routes': {
    extra: { hairpinMode: false, ipam: { ranges: [[{ subnet: V6 }], [{ subnet: '10.250.0.0/24' }]] } },
    ips: [
      { address: 'fd00:250::2/64', gateway: 'fd00:250::1' },
      { address: '10.250.0.2/24', gateway: GATEWAY },
    ],
  },
};

// The Debian reference plugins speak cniVersion up to 1.0.0.
for (const version of ['0.4.0', '1.0.0']) {
  for (const [title, { extra, ips }] of Object.entries(configs)) {
    describe(`reference bridge + host-local against ours, cniVersion ${version}, ${title}`, () => {
      const pair = referencePair('bridge');

      const confFor = (box: Sandbox) => {
        const { ipam, ...rest } = extra as { ipam?: Record<string, unknown> };
        return box.bridgeConf(version, rest, ipam);
      };

      it(`ADD leaves the same container state and a result of the same shape; DEL removes the same (${version})`, async () => {
        const [ref, ours] = [pair.ref(), pair.ours()];
        const [refCtr, ourCtr] = [await ref.addContainer(), await ours.addContainer()];
        const refResult = await ref.add(confFor(ref), refCtr, 'ctr1', REFERENCE_PLUGINS);
        const ourResult = await ours.add(confFor(ours), ourCtr, 'ctr1', OUR_PLUGINS);

        expect(await containerState(ourCtr)).to.deep.equal(await containerState(refCtr));
        expect(await nodeState(ours, ourResult.interfaces[1].name)).to.deep.equal(await nodeState(ref, refResult.interfaces[1].name));
        expect(shape(ourResult)).to.deep.equal(shape(refResult));
        expect(values(ourResult)).to.deep.equal(values(refResult));
        expect(ourResult.ips.map((i: { address: string; gateway: string }) => ({ address: i.address, gateway: i.gateway }))).to.deep.equal(ips);
        // Masquerading per family: the same rules in iptables and ip6tables.
        for (const family of [4, 6] as const) expect(await masq(ours, family)).to.deep.equal(await masq(ref, family));

        for (const [box, ctr] of [[ref, refCtr], [ours, ourCtr]] as const) {
          const del = await box.call({ command: 'DEL', conf: confFor(box), netns: ctr, binDir: box === ref ? REFERENCE_PLUGINS : OUR_PLUGINS });
          expect(del.exitCode, del.stdout).to.equal(0);
          expect(box.leases()).to.deep.equal([]);
        }
        expect(await containerState(ourCtr)).to.deep.equal(await containerState(refCtr));
      });
    });
  }
}
