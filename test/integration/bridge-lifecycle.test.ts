// The built bridge + host-local executables on the real kernel, once per spec
// version: ADD, CHECK, DEL and their corner cases, read back with `ip -json`.
import { expect } from 'chai';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNetns, run } from '../../src/net/exec.js';
import { Ip, type Link } from '../../src/net/ip.js';
import { masqChainName, natRules } from '../../src/net/iptables.js';
import { compareVersions } from '../../src/cni/version.js';
import { BRIDGE, GATEWAY, NETWORK, SPEC_VERSIONS, Sandbox, buildPlugins } from '../helpers/cni-sandbox.js';

before(buildPlugins);

async function eth0(netns: string): Promise<Link | undefined> {
  const [link] = await new Ip(netns).json<Link[]>('addr', 'show', 'dev', 'eth0').catch(() => [] as Link[]);
  return link;
}

for (const version of SPEC_VERSIONS) {
  describe(`bridge + host-local, cniVersion ${version}`, () => {
    let box: Sandbox;
    let ctr: string;
    let conf: Record<string, unknown>;

    beforeEach(async () => {
      box = await Sandbox.create();
      ctr = await box.addContainer();
      conf = box.bridgeConf(version);
    });
    afterEach(async () => box.destroy());

    it(`ADD wires eth0 into the container and its veth peer onto the bridge, nothing in the root namespace (${version})`, async () => {
      const result = await box.add(conf, ctr);
      const hostVeth = result.interfaces[1].name;

      const link = await eth0(ctr);
      expect(link, 'eth0 in the container').to.exist;
      expect(link!.flags).to.include('UP');
      expect(link!.addr_info!.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).to.deep.equal([result.ips[0].address]);
      const port = await box.nodeIp.link(hostVeth);
      expect(port?.master).to.equal(BRIDGE);
      expect(port?.flags).to.include('UP');

      const root = new Ip();
      expect(await root.link(hostVeth), 'host veth in the root namespace').to.be.undefined;
      expect(await root.link(BRIDGE), 'bridge in the root namespace').to.be.undefined;

      const ip = result.ips[0].address.split('/')[0];
      expect(box.leases()).to.deep.equal([ip]);
      expect(readFileSync(join(box.dataDir, NETWORK, ip), 'utf8')).to.equal('ctr1\r\neth0');
    });

    it(`ADD, CHECK with prevResult, DEL (${version})`, async () => {
      const result = await box.add(conf, ctr);
      const check = await box.call({ command: 'CHECK', conf: { ...conf, prevResult: result }, netns: ctr });
      expect(check.exitCode, check.stdout).to.equal(0);
      expect(check.stdout).to.equal('');

      const del = await box.call({ command: 'DEL', conf, netns: ctr });
      expect(del.exitCode, del.stdout).to.equal(0);
      expect(await eth0(ctr)).to.be.undefined;
      expect(await box.nodeIp.link(result.interfaces[1].name)).to.be.undefined;
      expect(box.leases()).to.deep.equal([]);

      const late = await box.call({ command: 'CHECK', conf: { ...conf, prevResult: result }, netns: ctr });
      expect(late.exitCode, 'CHECK after DEL').to.not.equal(0);
    });

    it(`CHECK notices an address missing from the container (${version})`, async () => {
      const result = await box.add(conf, ctr);
      await new Ip(ctr).cmd('addr', 'del', result.ips[0].address, 'dev', 'eth0');
      const check = await box.call({ command: 'CHECK', conf: { ...conf, prevResult: result }, netns: ctr });
      expect(check.exitCode).to.not.equal(0);
      expect(check.json.msg).to.include(result.ips[0].address);
    });

    it(`VERSION lists every supported version and answers in ${version}`, async () => {
      const out = await box.call({ command: 'VERSION', conf: { cniVersion: version }, env: { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined } });
      expect(out.exitCode).to.equal(0);
      expect(out.json.cniVersion).to.equal(version);
      expect(out.json.supportedVersions).to.include.members([...SPEC_VERSIONS]);
    });

    it(`DEL of a container that was never added succeeds (${version})`, async () => {
      const del = await box.call({ command: 'DEL', conf, netns: ctr });
      expect(del.exitCode, del.stdout).to.equal(0);
      expect(await box.snapshot()).to.deep.include({ node: ['lo'], leases: [] });
    });

    it(`DEL twice succeeds (${version})`, async () => {
      await box.add(conf, ctr);
      for (const n of [1, 2]) {
        const del = await box.call({ command: 'DEL', conf, netns: ctr });
        expect(del.exitCode, `DEL #${n}: ${del.stdout}`).to.equal(0);
      }
      expect(box.leases()).to.deep.equal([]);
    });

    it(`DEL with an empty CNI_NETNS frees the lease and the NAT chain (${version})`, async () => {
      await box.add(conf, ctr);
      const del = await box.call({ command: 'DEL', conf, netns: '' });
      expect(del.exitCode, del.stdout).to.equal(0);
      expect(box.leases()).to.deep.equal([]);
      expect((await natRules(box.node)).join('\n')).to.not.include(masqChainName(NETWORK, 'ctr1'));
    });

    it(`DEL after the container namespace is gone (${version})`, async () => {
      const result = await box.add(conf, ctr);
      await box.removeContainer(ctr);
      const del = await box.call({ command: 'DEL', conf, netns: ctr });
      expect(del.exitCode, del.stdout).to.equal(0);
      expect(box.leases()).to.deep.equal([]);
      expect(await box.nodeIp.link(result.interfaces[1].name)).to.be.undefined;
      expect((await natRules(box.node)).join('\n')).to.not.include(masqChainName(NETWORK, 'ctr1'));
    });

    it(`the ADD result has the shape of ${version} and matches the kernel`, async () => {
      const result = await box.add(conf, ctr);
      expect(result.cniVersion).to.equal(version);
      expect(result.interfaces.map((i: { name: string }) => i.name)).to.deep.equal([BRIDGE, result.interfaces[1].name, 'eth0']);
      expect(result.interfaces[1].name).to.match(/^veth[0-9a-f]{8}$/);
      expect(result.interfaces[2].sandbox).to.equal(ctr);
      expect(result.ips).to.have.length(1);
      expect(result.ips[0]).to.include({ gateway: GATEWAY, interface: 2 });
      expect(result.ips[0].address).to.match(/^10\.250\.0\.\d+\/24$/);
      // 0.4.0 results carry "version" per IP; 1.0.0 dropped it.
      if (compareVersions(version, '1.0.0') < 0) expect(result.ips[0].version).to.equal('4');
      else expect(result.ips[0]).to.not.have.property('version');

      // The MACs are what the kernel has now (a bridge takes a port's MAC when the first one joins).
      expect(result.interfaces[0].mac).to.equal((await box.nodeIp.link(BRIDGE))!.address);
      expect(result.interfaces[1].mac).to.equal((await box.nodeIp.link(result.interfaces[1].name))!.address);
      expect(result.interfaces[2].mac).to.equal((await eth0(ctr))!.address);
    });

    if (compareVersions(version, '1.1.0') >= 0) {
      it(`GC removes the leases missing from cni.dev/valid-attachments (${version})`, async () => {
        const other = await box.addContainer();
        const kept = (await box.add(conf, ctr, 'ctr1')).ips[0].address.split('/')[0];
        await box.add(conf, other, 'ctr2');
        expect(box.leases()).to.have.length(2);
        const gc = await box.call({ command: 'GC', conf: { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] } });
        expect(gc.exitCode, gc.stdout).to.equal(0);
        expect(box.leases()).to.deep.equal([kept]);
      });

      it(`GC reclaims a lease file a crashed ADD left empty, and ADD steps over it (${version})`, async () => {
        mkdirSync(join(box.dataDir, NETWORK), { recursive: true });
        writeFileSync(join(box.dataDir, NETWORK, '10.250.0.2'), '');
        const result = await box.add(conf, ctr);
        expect(result.ips[0].address).to.equal('10.250.0.3/24');
        const gc = await box.call({ command: 'GC', conf: { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'ctr1', ifname: 'eth0' }] } });
        expect(gc.exitCode, gc.stdout).to.equal(0);
        expect(box.leases()).to.deep.equal(['10.250.0.3']);
      });

      it(`STATUS answers 0 while addresses are free and 50 when the range is full (${version})`, async () => {
        const status = await box.call({ command: 'STATUS', conf });
        expect(status.exitCode, status.stdout).to.equal(0);
        // A /30 has one address left once the gateway is taken.
        const tiny = box.bridgeConf(version, {}, { ranges: [[{ subnet: '10.250.9.0/30' }]] });
        await box.add(tiny, ctr);
        const full = await box.call({ command: 'STATUS', conf: tiny });
        expect(full.exitCode).to.equal(50);
        expect(full.json).to.include({ code: 50 });
        expect(full.json.msg).to.include('no free address');
      });
    } else {
      it(`GC and STATUS are refused with code 1 before 1.1.0 (${version})`, async () => {
        for (const command of ['GC', 'STATUS'] as const) {
          const out = await box.call({ command, conf });
          expect(out.json, command).to.include({ code: 1, cniVersion: version });
          expect(out.json.msg).to.include(command).and.include('1.1.0');
        }
      });
    }
  });
}

describe('bridge options on the kernel (cniVersion 1.1.0)', () => {
  let box: Sandbox;
  beforeEach(async () => (box = await Sandbox.create()));
  afterEach(async () => box.destroy());

  it('ipMasq: the chain exists in the node namespace after ADD, not in the root one, and is gone after DEL', async () => {
    const ctr = await box.addContainer();
    const conf = box.bridgeConf('1.1.0');
    const result = await box.add(conf, ctr);
    const chain = masqChainName(NETWORK, 'ctr1');
    const rules = await natRules(box.node);
    expect(rules).to.include(`-N ${chain}`);
    expect(rules.some((r) => r.startsWith(`-A POSTROUTING -s ${result.ips[0].address.split('/')[0]}/32`) && r.endsWith(`-j ${chain}`))).to.equal(true);
    expect((await natRules(undefined)).join('\n')).to.not.include(chain);

    await box.call({ command: 'DEL', conf, netns: ctr });
    expect((await natRules(box.node)).join('\n')).to.not.include(chain);
  });

  it('hairpinMode turns hairpin on for the bridge port', async () => {
    const ctr = await box.addContainer();
    const result = await box.add(box.bridgeConf('1.1.0'), ctr);
    const port = await box.nodeIp.link(result.interfaces[1].name);
    expect(port?.linkinfo?.info_slave_data?.hairpin).to.equal(true);
  });

  it('isGateway puts the gateway address on the bridge and turns on forwarding in the node', async () => {
    const ctr = await box.addContainer();
    // New namespaces may inherit forwarding from the root one here: start from off.
    await box.nodeIp.sysctl({ 'net.ipv4.ip_forward': 0 });
    await box.add(box.bridgeConf('1.1.0'), ctr);
    const [bridge] = await box.nodeIp.addrs(BRIDGE);
    expect(bridge.addr_info!.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).to.deep.equal([`${GATEWAY}/24`]);
    expect(await box.nodeIp.readSysctl('net.ipv4.ip_forward')).to.equal('1');
  });

  it('promiscMode puts the bridge in promiscuous mode; without it the bridge stays as it was', async () => {
    const ctr = await box.addContainer();
    await box.add(box.bridgeConf('1.1.0'), ctr, 'ctr1');
    expect((await box.nodeIp.link(BRIDGE))?.flags).to.not.include('PROMISC');
    await box.add(box.bridgeConf('1.1.0', { promiscMode: true }), await box.addContainer(), 'ctr2');
    expect((await box.nodeIp.link(BRIDGE))?.flags).to.include('PROMISC');
  });

  it('mtu is set on eth0, the host veth and the bridge', async () => {
    const ctr = await box.addContainer();
    const result = await box.add(box.bridgeConf('1.1.0', { mtu: 1280 }), ctr);
    expect((await new Ip(ctr).link('eth0'))?.mtu).to.equal(1280);
    expect((await box.nodeIp.link(result.interfaces[1].name))?.mtu).to.equal(1280);
    expect((await box.nodeIp.link(BRIDGE))?.mtu).to.equal(1280);
  });

  it('isDefaultGateway adds a default route via the gateway in the container', async () => {
    const ctr = await box.addContainer();
    const result = await box.add(box.bridgeConf('1.1.0', { isDefaultGateway: true }), ctr);
    const routes = await new Ip(ctr).routes('default');
    expect(routes).to.have.length(1);
    expect(routes[0]).to.include({ gateway: GATEWAY, dev: 'eth0' });
    expect(result.routes).to.deep.equal([{ dst: '0.0.0.0/0', gw: GATEWAY }]);
  });

  it('ADD takes the CNI_ARGS a runtime sends and an ifname other than eth0', async () => {
    const ctr = await box.addContainer();
    const conf = box.bridgeConf('1.1.0');
    const cniArgs = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0';
    const add = await box.call({ command: 'ADD', conf, netns: ctr, ifname: 'net1', cniArgs });
    expect(add.exitCode, add.stdout).to.equal(0);
    expect(add.json.interfaces[2]).to.include({ name: 'net1', sandbox: ctr });
    expect(await new Ip(ctr).link('net1')).to.exist;
    expect(readFileSync(join(box.dataDir, NETWORK, box.leases()[0]), 'utf8')).to.equal('ctr1\r\nnet1');
    const del = await box.call({ command: 'DEL', conf, netns: ctr, ifname: 'net1', cniArgs });
    expect(del.exitCode, del.stdout).to.equal(0);
    expect(box.leases()).to.deep.equal([]);
  });

  it('an ADD that fails after the veth exists takes back the veth and the lease', async () => {
    const ctr = await box.addContainer();
    // The kernel refuses a gateway that is not on the container's subnet, late in ADD.
    const conf = box.bridgeConf('1.1.0', {}, { routes: [{ dst: '10.251.0.0/16', gw: '10.9.9.9' }] });
    const add = await box.call({ command: 'ADD', conf, netns: ctr });
    expect(add.exitCode).to.not.equal(0);
    expect(add.json.msg).to.include('invalid gateway');
    expect((await new Ip(ctr).links()).map((l) => l.ifname)).to.deep.equal(['lo']);
    expect((await box.nodeIp.links()).filter((l) => l.linkinfo?.info_kind === 'veth')).to.deep.equal([]);
    expect(box.leases()).to.deep.equal([]);
  });

  it('two containers on one bridge reach each other and the gateway', async () => {
    const [a, b] = [await box.addContainer(), await box.addContainer()];
    const conf = box.bridgeConf('1.1.0');
    await box.add(conf, a, 'ctr1');
    const ipB = (await box.add(conf, b, 'ctr2')).ips[0].address.split('/')[0];
    for (const target of [ipB, GATEWAY]) {
      const ping = await run(inNetns(a, 'ping', ['-c', '1', '-W', '2', target]), { allowFailure: true });
      expect(ping.exitCode, `ping ${target}: ${ping.stdout}`).to.equal(0);
    }
  });
});
