// The built macvlan and portmap plugins on the real kernel, called as a runtime
// calls them, in namespaces of this test's own: what ADD makes, what a failed
// ADD leaves (nothing of ours, and nothing of anyone else's removed), DEL twice.
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, netnsPath, run } from '../../src/net/exec.js';
import { Ip } from '../../src/net/ip.js';
import { addNetns, deleteNetns } from '../../src/net/netns.js';
import { NAME_PREFIX } from '../../src/lab/state.js';
import { ErrorCode } from '../../src/cni/errors.js';
import { dnatChainName } from '../../src/cni/plugins/portmap.js';
import { requireBuilt } from '../../src/lab/paths.js';

const BIN = resolve('dist/cni/bin');
const NS = `${NAME_PREFIX}plugtest-${process.pid}-`;
const node = `${NS}node`;
const ctr = `${NS}ctr`;

async function call(plugin: string, command: string, conf: Record<string, unknown>, netns = netnsPath(ctr), containerId = 'c1') {
  const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: BIN, CNILAB_CNID_AUTOSTART: '0' };
  const r = await run(inNetns(node, join(BIN, plugin), []), { input: JSON.stringify(conf), env, allowFailure: true });
  return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

describe('macvlan and portmap plugins on the kernel', function () {
  this.timeout(60_000);
  let dataDir = '';
  const leases = () => (existsSync(join(dataDir, 'mv')) ? readdirSync(join(dataDir, 'mv')).filter((f) => /^\d/.test(f)) : []);
  const macvlanConf = (extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.1.0',
    name: 'mv',
    type: 'macvlan',
    master: 'eth0',
    ...extra,
    ipam: { type: 'host-local', ranges: [[{ subnet: '192.168.10.0/24', rangeStart: '192.168.10.65', rangeEnd: '192.168.10.79' }]], dataDir },
  });

  before(async () => {
    requireBuilt();
    dataDir = mkdtempSync(join(tmpdir(), 'cnilab-plugtest-'));
    await addNetns(node);
    await addNetns(ctr);
    await new Ip(node).batch([
      ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0'],
      ['link', 'set', 'eth0', 'up'],
    ]);
  });
  after(async () => {
    await deleteNetns(ctr);
    await deleteNetns(node);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('macvlan: ADD puts a bridge-mode macvlan of the master into the container, DEL (twice) takes it and the lease back', async () => {
    const add = await call('macvlan', 'ADD', macvlanConf());
    expect(add.exitCode, add.stdout).to.equal(0);
    expect(add.json.ips).to.deep.equal([{ address: '192.168.10.65/24', gateway: '192.168.10.1', interface: 0 }]);
    const link = await new Ip(ctr).link('eth0');
    expect(link?.linkinfo?.info_kind).to.equal('macvlan');
    expect(link?.linkinfo?.info_data?.mode).to.equal('bridge');
    expect(link?.address).to.equal(add.json.interfaces[0].mac);
    expect((await call('macvlan', 'CHECK', { ...macvlanConf(), prevResult: add.json })).exitCode).to.equal(0);

    for (let i = 0; i < 2; i++) expect((await call('macvlan', 'DEL', macvlanConf())).exitCode).to.equal(0);
    expect(await new Ip(ctr).link('eth0')).to.equal(undefined);
    expect(leases()).to.deep.equal([]);
  });

  it('macvlan: a container that already has eth0 keeps it, and no lease is left', async () => {
    await new Ip(ctr).cmd('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0');
    try {
      const add = await call('macvlan', 'ADD', macvlanConf());
      expect(add.exitCode).to.not.equal(0);
      expect(add.json).to.deep.include({ code: ErrorCode.InvalidConfig, msg: 'the container already has an interface named eth0' });
      expect((await new Ip(ctr).link('eth0'))?.linkinfo?.info_kind).to.equal('veth');
      expect(leases()).to.deep.equal([]);
    } finally {
      await new Ip(ctr).deleteLink('eth0');
    }
  });

  it('macvlan: a master the node does not have is named, before any lease is taken', async () => {
    const add = await call('macvlan', 'ADD', macvlanConf({ master: 'eth9' }));
    expect(add.json).to.deep.include({ code: ErrorCode.InvalidConfig, msg: 'invalid network configuration: master: "eth9" does not exist on the node' });
    expect(leases()).to.deep.equal([]);
  });

  describe('portmap', () => {
    const prevResult = { cniVersion: '1.1.0', ips: [{ address: '172.17.0.2/16' }] };
    const conf = (extra: Record<string, unknown> = {}) => ({
      cniVersion: '1.1.0',
      name: 'bridge',
      type: 'portmap',
      runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
      prevResult,
      ...extra,
    });
    const nat = async () => (await run(inNetns(node, 'iptables', ['-w', '-t', 'nat', '-S']))).stdout;
    const chain = dnatChainName('bridge', 'c1');

    it('ADD (twice) writes one DNAT chain reached once; the result passes through; DEL (twice) removes it', async () => {
      for (let i = 0; i < 2; i++) {
        const add = await call('portmap', 'ADD', conf());
        expect(add.exitCode, add.stdout).to.equal(0);
        expect(add.json.ips).to.deep.equal(prevResult.ips);
      }
      const rules = await nat();
      expect(rules).to.include(`-A ${chain} -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80`);
      expect(rules.split('\n').filter((l) => l.endsWith(`-j ${chain}`))).to.have.length(1);
      expect(rules).to.include('-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT');
      expect((await call('portmap', 'CHECK', conf())).exitCode).to.equal(0);

      for (let i = 0; i < 2; i++) expect((await call('portmap', 'DEL', conf())).exitCode).to.equal(0);
      expect(await nat()).to.not.include(chain);
    });

    it('ADD without a prevResult says it is chained', async () => {
      const add = await call('portmap', 'ADD', conf({ prevResult: undefined }));
      expect(add.json.code).to.equal(ErrorCode.InvalidConfig);
      expect(add.json.msg).to.match(/prevResult: is required: portmap is chained after the plugin that gives the container its address/);
    });
  });
});
