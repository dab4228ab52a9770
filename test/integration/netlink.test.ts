// The rtnetlink client on real namespaces: what it makes is what `ip` then
// reads back, a socket opened in another namespace works there, and the
// kernel's refusals come back with their errno and message.
import { expect } from 'chai';
import { Ip } from '../../src/net/ip.js';
import { addNetns, deleteNetns } from '../../src/net/netns.js';
import { netnsPath } from '../../src/net/exec.js';
import { ERRNO, IFF, NetlinkError, Rtnl, withNetnsFd } from '../../src/net/netlink.js';

const NODE = `cnitest-b-nl-node-${process.pid}`;
const CTR = `cnitest-b-nl-ctr-${process.pid}`;

function refusal(fn: () => void): NetlinkError {
  try {
    fn();
  } catch (e) {
    if (e instanceof NetlinkError) return e;
    throw e;
  }
  throw new Error('the kernel accepted it');
}

describe('rtnetlink client (src/net/netlink.ts) on real namespaces', () => {
  let node: Rtnl;
  let ctr: Rtnl;

  before(async () => {
    await addNetns(NODE);
    await addNetns(CTR);
    node = Rtnl.open(netnsPath(NODE));
    ctr = Rtnl.open(netnsPath(CTR));
  });

  after(async () => {
    node?.close();
    ctr?.close();
    await deleteNetns(CTR);
    await deleteNetns(NODE);
  });

  it('makes a bridge, and a veth pair whose host end is its port and whose peer is born in the other namespace', async () => {
    node.addBridge('br-t', 1400);
    const bridge = node.getLink('br-t')!;
    expect(bridge.kind).to.equal('bridge');
    withNetnsFd(netnsPath(CTR), (netnsFd) =>
      node.addVeth({ name: 'veth-t', mac: '02:00:00:00:01:01', mtu: 1400, master: bridge.index }, { name: 'eth0', mac: '02:00:00:00:01:02', mtu: 1400, netnsFd }),
    );
    const host = await new Ip(NODE).link('veth-t');
    expect(host?.master).to.equal('br-t');
    expect(host?.flags).to.include('UP');
    expect(host?.address).to.equal('02:00:00:00:01:01');
    expect(await new Ip(NODE).link('eth0')).to.equal(undefined); // not here: created over there
    const peer = await new Ip(CTR).link('eth0');
    expect(peer?.address).to.equal('02:00:00:00:01:02');
    expect(peer?.mtu).to.equal(1400);
    expect(node.getLink('br-t')!.address).to.equal('02:00:00:00:01:01'); // a bridge takes its first port's MAC
  });

  it('configures the other namespace from here: addresses, up, routes', async () => {
    const eth = ctr.getLink('eth0')!;
    ctr.addAddress(eth.index, '10.99.0.2/24');
    ctr.addAddress(eth.index, 'fd99::2/64', { nodad: true });
    ctr.setFlags(eth.index, IFF.UP, IFF.UP);
    ctr.addRoute({ dst: '0.0.0.0/0', gw: '10.99.0.1', index: eth.index });
    ctr.addRoute({ dst: '10.98.0.0/16', index: eth.index });
    ctr.addRoute({ dst: 'fd98::/64', gw: 'fd99::1', index: eth.index });
    const [link] = await new Ip(CTR).addrs('eth0');
    expect(link.flags).to.include('UP');
    expect(link.addr_info?.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`)).to.have.members(['10.99.0.2/24', 'fd99::2/64']);
    const routes = await new Ip(CTR).routes();
    expect(routes.find((r) => r.dst === 'default')).to.include({ gateway: '10.99.0.1', dev: 'eth0' });
    expect(routes.find((r) => r.dst === '10.98.0.0/16')).to.include({ dev: 'eth0', scope: 'link' });
    const v6 = await new Ip(CTR).routes6();
    expect(v6.find((r) => r.dst === 'fd98::/64')).to.include({ gateway: 'fd99::1', dev: 'eth0' });
  });

  it('replaces a gateway address on the bridge, hairpin and promiscuous mode on', async () => {
    const bridge = node.getLink('br-t')!;
    node.addAddress(bridge.index, '10.99.0.1/24', { replace: true });
    node.addAddress(bridge.index, '10.99.0.1/24', { replace: true }); // again: no error
    node.setHairpin(node.getLink('veth-t')!.index);
    node.setFlags(bridge.index, IFF.PROMISC, IFF.PROMISC);
    const [br] = await new Ip(NODE).addrs('br-t');
    expect(br.addr_info?.map((a) => a.local)).to.include('10.99.0.1');
    expect(br.flags).to.include('PROMISC');
    expect((await new Ip(NODE).link('veth-t'))?.linkinfo?.info_slave_data).to.include({ hairpin: true });
  });

  it('reports refusals with errno and the kernel message; a missing link reads as undefined', () => {
    expect(node.getLink('nosuch0')).to.equal(undefined);
    expect(refusal(() => node.addBridge('br-t', 1400)).errno).to.equal(ERRNO.EEXIST);
    const eth = ctr.getLink('eth0')!;
    expect(refusal(() => ctr.addAddress(eth.index, '10.99.0.2/24')).errno).to.equal(ERRNO.EEXIST);
    const e = refusal(() => ctr.addRoute({ dst: '10.97.0.0/16', gw: '10.1.1.1', index: eth.index }));
    expect(e.message).to.match(/adding route 10.97.0.0\/16 via 10.1.1.1 in .*: .+ \(.*[Nn]exthop.*\)/);
  });

  it('deletes a link by name, its peer with it', async () => {
    await ctr.deleteLink('eth0');
    expect(await new Ip(CTR).link('eth0')).to.equal(undefined);
    expect(await new Ip(NODE).link('veth-t')).to.equal(undefined);
    let err: unknown;
    await ctr.deleteLink('eth0').catch((e) => (err = e));
    expect((err as NetlinkError).errno).to.equal(ERRNO.ENODEV);
  });
});
