// Parallel ADDs on one node must never hand out one address twice, and
// parallel DELs must free every lease: host-local's locking on the real disk.
import { expect } from 'chai';
import { Ip } from '../../src/net/ip.js';
import { BRIDGE, Sandbox, buildPlugins } from '../helpers/cni-sandbox.js';

const COUNT = 50;

describe(`${COUNT} containers on one node at once`, () => {
  let box: Sandbox;
  before(buildPlugins);
  beforeEach(async () => (box = await Sandbox.create()));
  afterEach(async () => box.destroy());

  it(`${COUNT} parallel ADDs get ${COUNT} distinct addresses; ${COUNT} parallel DELs free them all`, async () => {
    const conf = box.bridgeConf('1.1.0');
    const ctrs: string[] = [];
    for (let i = 0; i < COUNT; i++) ctrs.push(await box.addContainer());
    const id = (i: number) => `par${i}`;

    const adds = await Promise.all(ctrs.map((netns, i) => box.call({ command: 'ADD', conf, netns, containerId: id(i) })));
    const failed = adds.filter((a) => a.exitCode !== 0).map((a) => a.stdout + a.stderr);
    expect(failed, 'failed ADDs').to.deep.equal([]);
    const addresses = adds.map((a) => a.json.ips[0].address as string);
    expect(new Set(addresses).size).to.equal(COUNT);
    expect(box.leases()).to.have.length(COUNT);

    // The kernel agrees with the results: each container holds the address it was given.
    for (let i = 0; i < COUNT; i++) {
      const [eth0] = await new Ip(ctrs[i]).addrs('eth0');
      const inet = eth0.addr_info!.find((a) => a.family === 'inet')!;
      expect(`${inet.local}/${inet.prefixlen}`).to.equal(addresses[i]);
    }
    const ports = (await box.nodeIp.links()).filter((l) => l.master === BRIDGE);
    expect(ports).to.have.length(COUNT);

    const dels = await Promise.all(ctrs.map((netns, i) => box.call({ command: 'DEL', conf, netns, containerId: id(i) })));
    expect(dels.filter((d) => d.exitCode !== 0).map((d) => d.stdout), 'failed DELs').to.deep.equal([]);
    expect(box.leases()).to.deep.equal([]);
    expect((await box.nodeIp.links()).map((l) => l.ifname).sort()).to.deep.equal([BRIDGE, 'lo']);
  });
});
