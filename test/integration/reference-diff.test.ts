// Differential test: the reference bridge + host-local (Debian's
// containernetworking-plugins) and ours, given the same config, must leave the
// same state in the container and print results of the same shape.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Ip } from '../../src/net/ip.js';
import { BRIDGE, GATEWAY, OUR_PLUGINS, REFERENCE_PLUGINS, Sandbox, buildPlugins } from '../helpers/cni-sandbox.js';

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
        addresses: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen} ${a.scope}`),
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    kinds: (await ip.links()).map((l) => `${l.ifname}:${l.linkinfo?.info_kind ?? ''}`).sort(),
    routes: (await ip.routes()).map((r) => ({ dst: r.dst, gateway: r.gateway, dev: r.dev, scope: r.scope, protocol: r.protocol })),
  };
}

/** What the node's side looks like: the bridge's addresses and the port's settings. */
async function nodeState(box: Sandbox, hostVeth: string) {
  const [bridge] = await box.nodeIp.addrs(BRIDGE);
  const port = await box.nodeIp.link(hostVeth);
  return {
    bridgeAddresses: bridge.addr_info!.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    port: { master: port?.master, mtu: port?.mtu, hairpin: port?.linkinfo?.info_slave_data?.hairpin },
  };
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

const configs: Record<string, Record<string, unknown>> = {
  'no routes': {},
  'isDefaultGateway and an ipam route': { isDefaultGateway: true, ipam: { routes: [{ dst: '10.251.0.0/16' }] } },
};

// The Debian reference plugins speak cniVersion up to 1.0.0.
for (const version of ['0.4.0', '1.0.0']) {
  for (const [title, extra] of Object.entries(configs)) {
    describe(`reference bridge + host-local against ours, cniVersion ${version}, ${title}`, () => {
      let ref: Sandbox;
      let ours: Sandbox;
      before(function () {
        if (!existsSync(join(REFERENCE_PLUGINS, 'bridge'))) this.skip();
        return buildPlugins();
      });
      beforeEach(async () => {
        ref = await Sandbox.create();
        ours = await Sandbox.create();
      });
      afterEach(async () => {
        await ref?.destroy();
        await ours?.destroy();
      });

      const confFor = (box: Sandbox) => {
        const { ipam, ...rest } = extra as { ipam?: Record<string, unknown> };
        return box.bridgeConf(version, rest, ipam);
      };

      it(`ADD leaves the same container state and a result of the same shape; DEL removes the same (${version})`, async () => {
        const [refCtr, ourCtr] = [await ref.addContainer(), await ours.addContainer()];
        const refResult = await ref.add(confFor(ref), refCtr, 'ctr1', REFERENCE_PLUGINS);
        const ourResult = await ours.add(confFor(ours), ourCtr, 'ctr1', OUR_PLUGINS);

        expect(await containerState(ourCtr)).to.deep.equal(await containerState(refCtr));
        expect(await nodeState(ours, ourResult.interfaces[1].name)).to.deep.equal(await nodeState(ref, refResult.interfaces[1].name));
        expect(shape(ourResult)).to.deep.equal(shape(refResult));
        expect(values(ourResult)).to.deep.equal(values(refResult));
        expect(ourResult.ips[0]).to.include({ address: '10.250.0.2/24', gateway: GATEWAY });

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
