// Calico's parts that need no kernel: the block allocator (over a datastore
// kept in memory, with etcd's compare-and-swap semantics), BIRD's generated
// configuration (checked by BIRD's own parser), and the plugin's naming and routes.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/net/exec.js';
import { BlockAllocator, nextFreeBlock, poolBlocks } from '../../src/datapaths/calico/ipam.js';
import type { Block, IpamStore, IpPool, Versioned } from '../../src/datapaths/calico/store.js';
import { birdConfig, meshProtocolName, parseProtocols } from '../../src/datapaths/calico/bird.js';
import { modeOf, remoteBlockRoute } from '../../src/datapaths/calico/node-agent.js';
import { containerSetup, hostVethName } from '../../src/datapaths/calico/cni-plugin.js';
import { CniError, ErrorCode } from '../../src/cni/errors.js';
import { parseNetConf } from '../../src/cni/config.js';
import { calicoIpam } from '../../src/datapaths/calico/cni-ipam.js';
import { NodeServices } from '../../src/runner/services.js';
import { parseLab } from '../../src/datapaths/index.js';

const POOL: IpPool = { name: 'default-ipv4-ippool', cidr: '10.244.0.0/16', blockSize: 26, vxlanMode: 'Never', ipipMode: 'Never' };

/** A datastore in memory with etcd's rules: create-if-absent, compare-and-swap on the revision. Every call yields, so parallel callers interleave. */
class MemoryStore implements IpamStore {
  private rev = 1;
  readonly data = new Map<string, Versioned<Block>>();
  conflictsToInject = 0;
  constructor(private poolList: IpPool[] = [POOL]) {}
  private tick = () => new Promise((r) => setImmediate(r));
  async pools() {
    await this.tick();
    return this.poolList;
  }
  async blocks() {
    await this.tick();
    return [...this.data.values()].map((b) => ({ value: structuredClone(b.value), revision: b.revision }));
  }
  async createBlock(block: Block) {
    await this.tick();
    if (this.data.has(block.cidr)) return false;
    this.data.set(block.cidr, { value: structuredClone(block), revision: ++this.rev });
    return true;
  }
  async updateBlock(block: Block, revision: number) {
    await this.tick();
    if (this.conflictsToInject > 0) {
      this.conflictsToInject--;
      this.data.get(block.cidr)!.revision = ++this.rev; // someone else wrote it meanwhile
      return false;
    }
    if (this.data.get(block.cidr)?.revision !== revision) return false;
    this.data.set(block.cidr, { value: structuredClone(block), revision: ++this.rev });
    return true;
  }
}


/** Each configuration passes BIRD's own parser (`bird -p`). */
async function expectBirdAccepts(configs: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cnilab-bird-'));
  try {
    for (const [i, text] of configs.entries()) {
      const file = join(dir, `bird${i}.conf`);
      writeFileSync(file, text);
      const r = await run(['bird', '-p', '-c', file], { allowFailure: true });
      expect(r.exitCode, `${r.stderr}\n${text}`).to.equal(0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('calico IPAM blocks', () => {
  it('cuts a pool into blocks in address order and finds the first unclaimed one', () => {
    const blocks = [...poolBlocks({ ...POOL, cidr: '10.244.0.0/24' })];
    expect(blocks).to.deep.equal(['10.244.0.0/26', '10.244.0.64/26', '10.244.0.128/26', '10.244.0.192/26']);
    expect([...poolBlocks(POOL)]).to.have.length(1024);
    expect(nextFreeBlock(POOL, new Set(['10.244.0.0/26', '10.244.0.128/26']))).to.equal('10.244.0.64/26');
  });

  it('gives each node its own block, in the order the nodes ask', async () => {
    const a = new BlockAllocator(new MemoryStore());
    expect((await a.ensureBlock('master')).map((b) => b.cidr)).to.deep.equal(['10.244.0.0/26']);
    expect((await a.ensureBlock('worker')).map((b) => b.cidr)).to.deep.equal(['10.244.0.64/26']);
    expect((await a.ensureBlock('master')).map((b) => b.cidr)).to.deep.equal(['10.244.0.0/26']); // kept, not claimed again
  });

  it('assigns the lowest free address of the node\'s block; the same handle gets the same address', async () => {
    const store = new MemoryStore();
    const a = new BlockAllocator(store);
    await a.ensureBlock('master');
    await a.ensureBlock('worker');
    expect(await a.assign({ node: 'worker', handle: 'net.c1', attrs: { pod: 'default/nginx-1' } })).to.equal('10.244.0.64');
    expect(await a.assign({ node: 'worker', handle: 'net.c2' })).to.equal('10.244.0.65');
    expect(await a.assign({ node: 'worker', handle: 'net.c1' })).to.equal('10.244.0.64');
    expect(store.data.get('10.244.0.64/26')!.value.allocations[0]).to.deep.equal({ handle: 'net.c1', attrs: { pod: 'default/nginx-1' } });
  });

  it('claims the next block when the node\'s blocks are full, and says when the pool is exhausted', async () => {
    const small = { ...POOL, cidr: '10.244.0.0/25' }; // two /26 blocks
    const a = new BlockAllocator(new MemoryStore([small]));
    const got: string[] = [];
    for (let i = 0; i < 65; i++) got.push(await a.assign({ node: 'master', handle: `net.c${i}` }));
    expect(got[63]).to.equal('10.244.0.63');
    expect(got[64]).to.equal('10.244.0.64'); // first address of the second block, now master's too
    for (let i = 65; i < 128; i++) await a.assign({ node: 'master', handle: `net.c${i}` });
    const err = await a.assign({ node: 'master', handle: 'net.one-too-many' }).catch((e: CniError) => e);
    expect(err).to.be.instanceOf(CniError);
    expect((err as CniError).code).to.equal(ErrorCode.AddressRangeExhausted);
    expect((err as CniError).message).to.match(/every block of 10\.244\.0\.0\/25 is claimed/);
  });

  it('releases a handle\'s address for reuse; releasing twice is fine', async () => {
    const a = new BlockAllocator(new MemoryStore());
    await a.assign({ node: 'master', handle: 'net.a' });
    await a.assign({ node: 'master', handle: 'net.b' });
    expect(await a.release('net.a')).to.deep.equal(['10.244.0.0']);
    expect(await a.release('net.a')).to.deep.equal([]);
    expect(await a.addresses('net.b')).to.deep.equal(['10.244.0.1']);
    expect(await a.assign({ node: 'master', handle: 'net.c' })).to.equal('10.244.0.0');
  });

  it('never hands out one address twice to parallel ADDs on two nodes', async () => {
    const store = new MemoryStore();
    const a = new BlockAllocator(store);
    const jobs = Array.from({ length: 40 }, (_, i) => a.assign({ node: i % 2 ? 'worker' : 'master', handle: `net.p${i}` }).then((ip) => ({ i, ip })));
    const got = await Promise.all(jobs);
    expect(new Set(got.map((g) => g.ip)).size).to.equal(40);
    // Each node's pods come from that node's own block(s).
    for (const { i, ip } of got) {
      const block = [...store.data.values()].find((b) => Object.values(b.value.allocations).some((x) => x.handle === `net.p${i}`))!;
      expect(block.value.affinity, ip).to.equal(i % 2 ? 'host:worker' : 'host:master');
    }
  });

  it('reads again and retries when another writer changed the block meanwhile', async () => {
    const store = new MemoryStore();
    const a = new BlockAllocator(store);
    await a.ensureBlock('master');
    store.conflictsToInject = 3;
    expect(await a.assign({ node: 'master', handle: 'net.x' })).to.equal('10.244.0.0');
    store.conflictsToInject = 1000;
    const err = await new BlockAllocator(store, 5).assign({ node: 'master', handle: 'net.y' }).catch((e: CniError) => e);
    expect((err as CniError).code).to.equal(ErrorCode.TryAgainLater);
  });

  it('names the pools when ipv4_pools matches none', async () => {
    const err = await new BlockAllocator(new MemoryStore()).assign({ node: 'm', handle: 'h', pools: ['10.99.0.0/16'] }).catch((e: CniError) => e);
    expect((err as CniError).code).to.equal(ErrorCode.InvalidConfig);
    expect((err as CniError).message).to.match(/ipam\.ipv4_pools: none of 10\.99\.0\.0\/16 is an IPv4 pool \(pools: default-ipv4-ippool 10\.244\.0\.0\/16\)/);
  });
});

describe('calico IPAM blocks, IPv6', () => {
  const POOL6: IpPool = { name: 'default-ipv6-ippool', cidr: 'fd00:10::/48', blockSize: 122, vxlanMode: 'Never', ipipMode: 'Never' };

  it('cuts an IPv6 pool into /122 blocks without listing all 2^74 of them', () => {
    expect(nextFreeBlock(POOL6, new Set())).to.equal('fd00:10::/122');
    expect(nextFreeBlock(POOL6, new Set(['fd00:10::/122']))).to.equal('fd00:10::40/122');
  });

  it('gives each node one block of each family, and each handle one address of each family', async () => {
    const store = new MemoryStore([POOL, POOL6]);
    const a = new BlockAllocator(store);
    expect((await a.ensureBlock('master')).map((b) => b.cidr)).to.deep.equal(['10.244.0.0/26', 'fd00:10::/122']);
    expect((await a.ensureBlock('worker')).map((b) => b.cidr)).to.deep.equal(['10.244.0.64/26', 'fd00:10::40/122']);
    expect(await a.assign({ node: 'worker', handle: 'net.c1', family: 4 })).to.equal('10.244.0.64');
    expect(await a.assign({ node: 'worker', handle: 'net.c1', family: 6 })).to.equal('fd00:10::40');
    expect(await a.assign({ node: 'worker', handle: 'net.c1', family: 6 })).to.equal('fd00:10::40'); // held already
    expect(await a.assign({ node: 'worker', handle: 'net.c2', family: 6 })).to.equal('fd00:10::41');
    expect((await a.addresses('net.c1')).sort()).to.deep.equal(['10.244.0.64', 'fd00:10::40']);
    expect((await a.release('net.c1')).sort()).to.deep.equal(['10.244.0.64', 'fd00:10::40']);
    expect(await a.assign({ node: 'worker', handle: 'net.c3', family: 6 })).to.equal('fd00:10::40');
  });

  it('fills a /122 with 64 addresses and then claims the next block', async () => {
    const a = new BlockAllocator(new MemoryStore([POOL6]));
    const got: string[] = [];
    for (let i = 0; i < 65; i++) got.push(await a.assign({ node: 'master', handle: `net.c${i}`, family: 6 }));
    expect(got[63]).to.equal('fd00:10::3f');
    expect(got[64]).to.equal('fd00:10::40');
    expect(new Set(got).size).to.equal(65);
  });

  it('never hands out one IPv6 address twice to parallel ADDs', async () => {
    const a = new BlockAllocator(new MemoryStore([POOL, POOL6]));
    const got = await Promise.all(Array.from({ length: 30 }, (_, i) => a.assign({ node: i % 2 ? 'worker' : 'master', handle: `net.p${i}`, family: 6 })));
    expect(new Set(got).size).to.equal(30);
  });

  it('refuses IPv6 when the datastore has no IPv6 pool, naming assign_ipv6', async () => {
    const err = await new BlockAllocator(new MemoryStore()).assign({ node: 'm', handle: 'h', family: 6 }).catch((e: CniError) => e);
    expect((err as CniError).code).to.equal(ErrorCode.InvalidConfig);
    expect((err as CniError).message).to.match(/ipam\.assign_ipv6: no IPv6 pool in the datastore \(pools: default-ipv4-ippool 10\.244\.0\.0\/16\)/);
  });
});

describe('calico-ipam configuration', () => {
  const load = (ipam: Record<string, unknown>) => calicoIpam.loadConfig(parseNetConf({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'calico', ipam: { type: 'calico-ipam', ...ipam } }));

  it('takes IPv4 by default and IPv6 only with assign_ipv6 "true", each with its pools', () => {
    expect(load({}).families).to.deep.equal([{ family: 4, pools: [] }]);
    expect(load({ assign_ipv6: 'true', ipv6_pools: ['fd00:10::/48'] }).families).to.deep.equal([{ family: 4, pools: [] }, { family: 6, pools: ['fd00:10::/48'] }]);
    expect(load({ assign_ipv4: 'false', assign_ipv6: true }).families).to.deep.equal([{ family: 6, pools: [] }]);
  });

  it('names the field of a bad flag, a pool CIDR of the wrong family, and a config that assigns nothing', () => {
    expect(() => load({ assign_ipv6: 'yes' })).to.throw(/ipam\.assign_ipv6: must be "true" or "false", not "yes"/);
    expect(() => load({ assign_ipv6: 'true', ipv6_pools: ['10.244.0.0/16'] })).to.throw(/ipam\.ipv6_pools\[0\]: "10\.244\.0\.0\/16" is not an IPv6 CIDR/);
    expect(() => load({ assign_ipv4: 'false' })).to.throw(/ipam\.assign_ipv4: with assign_ipv6 also off, no address would be assigned/);
  });
});

describe('BIRD configuration for the BGP mesh', () => {
  const master = { node: 'master', address: '192.168.10.210', asNumber: 64512, peers: [{ name: 'worker', address: '192.168.10.220' }], blocks: ['10.244.0.0/26'] };
  const worker = { node: 'worker', address: '192.168.10.220', asNumber: 64512, peers: [{ name: 'master', address: '192.168.10.210' }], blocks: ['10.244.0.64/26'] };

  it('is accepted by BIRD\'s own parser (bird -p)', async () => {
    await expectBirdAccepts([master, worker, { ...master, peers: [], blocks: [] }].map(birdConfig));
  });

  it('announces the node\'s blocks as blackholes and peers with every other node in one AS', () => {
    const text = birdConfig({ ...master, peers: [{ name: 'w2', address: '192.168.10.230' }, { name: 'worker', address: '192.168.10.220' }], blocks: ['10.244.1.0/26', '10.244.0.0/26'] });
    expect(text).to.include('router id 192.168.10.210;');
    expect(text).to.match(/protocol static blocks \{\n  ipv4;\n  route 10\.244\.0\.0\/26 blackhole;\n  route 10\.244\.1\.0\/26 blackhole;\n\}/);
    expect(text).to.include('local 192.168.10.210 as 64512;');
    const sessions = [...text.matchAll(/protocol bgp (\S+) from mesh \{\n  description "(\S+)";\n  neighbor (\S+) as 64512;/g)].map((m) => m.slice(1));
    expect(sessions).to.deep.equal([
      ['Mesh_192_168_10_220', 'worker', '192.168.10.220'],
      ['Mesh_192_168_10_230', 'w2', '192.168.10.230'],
    ]);
    expect(text).to.not.match(/^\s*(persist|graceful restart)\b/m); // a stopped BIRD takes its routes with it
  });

  it('makes the node with the higher address the passive one of each pair, as Calico does', () => {
    expect(birdConfig(master)).to.not.include('passive on;');
    expect(birdConfig(worker)).to.match(/neighbor 192\.168\.10\.210 as 64512;\n  passive on;/);
  });

  it('dual-stack: a second session per peer between the IPv6 addresses with an ipv6 channel, the IPv6 blocks in their own static and kernel protocols, accepted by bird -p', async () => {
    const m6 = { ...master, address6: 'fd00:192:168:10::210', peers: [{ ...master.peers[0], address6: 'fd00:192:168:10::220' }], blocks: ['fd00:10:244::/122', '10.244.0.0/26'] };
    const w6 = { ...worker, address6: 'fd00:192:168:10::220', peers: [{ ...worker.peers[0], address6: 'fd00:192:168:10::210' }], blocks: ['10.244.0.64/26', 'fd00:10:244::40/122'] };
    const text = birdConfig(m6);
    expect(text).to.match(/protocol static blocks \{\n  ipv4;\n  route 10\.244\.0\.0\/26 blackhole;\n\}/);
    expect(text).to.match(/protocol static blocks6 \{\n  ipv6;\n  route fd00:10:244::\/122 blackhole;\n\}/);
    expect(text).to.match(/protocol kernel kernel6 \{\n  metric 0;\n  ipv6 \{/);
    expect(text).to.match(/template bgp mesh6 \{\n  local fd00:192:168:10::210 as 64512;[\s\S]*?  ipv6 \{/);
    expect(text).to.match(/protocol bgp Mesh_fd00_192_168_10__220 from mesh6 \{\n  description "worker";\n  neighbor fd00:192:168:10::220 as 64512;\n\}/);
    expect(text).to.include('router id 192.168.10.210;'); // IPv4 even for the IPv6 sessions, as Calico's bird6
    expect(birdConfig(w6)).to.match(/neighbor fd00:192:168:10::210 as 64512;\n  passive on;/);
    expect(meshProtocolName('fd00:192:168:10::220')).to.equal('Mesh_fd00_192_168_10__220');
    await expectBirdAccepts([m6, w6].map(birdConfig));
  });

  it('route reflectors: the reflector peers with every node as rr client with its cluster id, the others with the reflector only; bird -p accepts both', async () => {
    const rr = { node: 'rr', address: '192.168.10.200', asNumber: 64512, routeReflectorClusterID: '244.0.0.1', blocks: ['10.244.0.0/26'], peers: [{ name: 'n2', address: '192.168.10.202' }, { name: 'n1', address: '192.168.10.201' }] };
    const n1 = { node: 'n1', address: '192.168.10.201', asNumber: 64512, blocks: ['10.244.0.64/26'], peers: [{ name: 'rr', address: '192.168.10.200', routeReflectorClusterID: '244.0.0.1' }, { name: 'n2', address: '192.168.10.202' }] };
    const onRR = birdConfig(rr);
    const sessions = (text: string) => [...text.matchAll(/protocol bgp (\S+) from/g)].map((m) => m[1]);
    expect(sessions(onRR)).to.deep.equal(['Node_192_168_10_201', 'Node_192_168_10_202']);
    expect(onRR).to.match(/neighbor 192\.168\.10\.201 as 64512;\n  rr client;\n  rr cluster id 244\.0\.0\.1;\n\}/);
    // It passes on what it learned, keeping the originator's next hop.
    expect(onRR).to.include('export where proto = "blocks" || source = RTS_BGP;').and.not.include('next hop self');
    const onN1 = birdConfig(n1);
    expect(sessions(onN1)).to.deep.equal(['Node_192_168_10_200']);
    expect(onN1).to.not.include('rr client').and.not.include('Mesh_');
    // Two reflectors of one cluster peer as plain iBGP, neither a client of the other.
    const rr2 = birdConfig({ ...rr, peers: [...rr.peers, { name: 'rr2', address: '192.168.10.199', routeReflectorClusterID: '244.0.0.1' }] });
    expect(rr2).to.match(/neighbor 192\.168\.10\.199 as 64512;\n\}/);
    await expectBirdAccepts([onRR, onN1, rr2]);
  });

  it('reads birdc show protocols', () => {
    const out = [
      'BIRD 2.0.12 ready.',
      'Name       Proto      Table      State  Since         Info',
      'device1    Device     ---        up     03:56:14.249  ',
      'blocks     Static     master4    up     03:56:14.249  ',
      'Mesh_192_168_10_220 BGP        ---        start  03:56:20.525  Active        Received: Administrative shutdown',
      'Mesh_192_168_10_230 BGP        ---        up     03:56:15.204  Established   ',
    ].join('\n');
    const rows = parseProtocols(out);
    expect(rows.map((r) => r.name)).to.deep.equal(['device1', 'blocks', 'Mesh_192_168_10_220', 'Mesh_192_168_10_230']);
    expect(rows[2]).to.include({ proto: 'BGP', state: 'start', info: 'Active        Received: Administrative shutdown' });
    expect(rows[3]).to.include({ state: 'up', info: 'Established' });
    expect(meshProtocolName('192.168.10.230')).to.equal('Mesh_192_168_10_230');
  });
});

describe('calico datapath pieces', () => {
  it('names the host side as Calico does: cali + 11 hex digits of sha1("<namespace>.<pod>")', () => {
    expect(hostVethName({ args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'nginx-0' }, containerId: 'x' })).to.equal('calic048fd9a750');
    expect(hostVethName({ args: {}, containerId: 'abc' })).to.match(/^cali[0-9a-f]{11}$/);
  });

  it('gives the pod its /32 and a default route via 169.254.1.1 onlink', () => {
    expect(containerSetup('eth0', [{ address: '10.244.0.1/32' }])).to.deep.equal([
      ['addr', 'add', '10.244.0.1/32', 'dev', 'eth0'],
      ['link', 'set', 'dev', 'eth0', 'up'],
      ['route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link'],
      ['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink'],
    ]);
  });

  it('gives a dual-stack pod a /128 without DAD and a default route via the host side\'s link-local address', () => {
    const lines = containerSetup('eth0', [{ address: '10.244.0.5/32' }, { address: 'fd00:10:244::5/128' }], 'fe80::ecee:eeff:feee:eeee');
    expect(lines).to.deep.include(['addr', 'add', 'fd00:10:244::5/128', 'dev', 'eth0', 'nodad']);
    expect(lines).to.deep.include(['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0', 'onlink']);
    expect(lines.at(-1)).to.deep.equal(['route', 'add', '::/0', 'via', 'fe80::ecee:eeff:feee:eeee', 'dev', 'eth0']);
  });

  it('routes a remote IPv6 block through vxlan-v6.calico to the owner\'s IPv6 VTEP, its MAC sent to the owner\'s IPv6 address', () => {
    const owner = { name: 'worker', ipv4Address: '192.168.10.220/24', ipv6Address: 'fd00:192:168:10::220/64', ipv4VXLANTunnelAddr: '10.244.0.64', vxlanTunnelMACAddr: '66:00:00:00:00:01', ipv6VXLANTunnelAddr: 'fd00:10:244::40', vxlanTunnelMACAddrV6: '66:00:00:00:00:02' };
    expect(remoteBlockRoute('vxlan', 'fd00:10:244::40/122', owner)).to.deep.equal({
      ip: [
        ['neigh', 'replace', 'fd00:10:244::40', 'lladdr', '66:00:00:00:00:02', 'dev', 'vxlan-v6.calico', 'nud', 'permanent'],
        ['route', 'replace', 'fd00:10:244::40/122', 'via', 'fd00:10:244::40', 'dev', 'vxlan-v6.calico', 'onlink', 'proto', '80'],
      ],
      bridge: [['fdb', 'replace', '66:00:00:00:00:02', 'dev', 'vxlan-v6.calico', 'dst', 'fd00:192:168:10::220', 'self', 'permanent']],
    });
    expect(remoteBlockRoute('vxlan', 'fd00:10:244::40/122', { ...owner, ipv6VXLANTunnelAddr: undefined })).to.equal(undefined); // not set up yet
    expect(remoteBlockRoute('ipip', 'fd00:10:244::40/122', owner)).to.equal(undefined);
  });

  it('routes a remote block via the remote VTEP (vxlan) or the remote node through tunl0 (ipip)', () => {
    const owner = { name: 'worker', ipv4Address: '192.168.10.220/24', ipv4VXLANTunnelAddr: '10.244.0.64', vxlanTunnelMACAddr: '66:aa:bb:cc:dd:ee' };
    expect(remoteBlockRoute('vxlan', '10.244.0.64/26', owner)).to.deep.equal({
      ip: [
        ['neigh', 'replace', '10.244.0.64', 'lladdr', '66:aa:bb:cc:dd:ee', 'dev', 'vxlan.calico', 'nud', 'permanent'],
        ['route', 'replace', '10.244.0.64/26', 'via', '10.244.0.64', 'dev', 'vxlan.calico', 'onlink', 'proto', '80'],
      ],
      bridge: [['fdb', 'replace', '66:aa:bb:cc:dd:ee', 'dev', 'vxlan.calico', 'dst', '192.168.10.220', 'self', 'permanent']],
    });
    expect(remoteBlockRoute('vxlan', '10.244.0.64/26', { name: 'w', ipv4Address: '192.168.10.220/24' })).to.equal(undefined); // still setting up
    expect(remoteBlockRoute('ipip', '10.244.0.64/26', owner)!.ip).to.deep.equal([['route', 'replace', '10.244.0.64/26', 'via', '192.168.10.220', 'dev', 'tunl0', 'onlink', 'proto', '80']]);
    expect(modeOf({ ...POOL, vxlanMode: 'Always' })).to.equal('vxlan');
    expect(modeOf({ ...POOL, ipipMode: 'Always' })).to.equal('ipip');
    expect(modeOf(POOL)).to.equal('bgp');
  });
});

describe('service steps', () => {
  const calicoLab = readFileSync('labs/calico-bgp.yaml', 'utf8');

  it('names the Calico modes when network.backend is none of them', () => {
    expect(() => parseLab(calicoLab.replace('backend: bgp', 'backend: gre'), 'bad.yaml')).to.throw(/bad\.yaml:\d+: network\.backend: "gre" is not one of bgp, vxlan, ipip/);
  });

  it('a service step must name a node of the lab', () => {
    const bad = calicoLab.replace('service: { node: worker, name: bird, action: stop }', 'service: { node: wrker, name: bird, action: stop }');
    expect(() => parseLab(bad, 'bad.yaml')).to.throw(/bad\.yaml:\d+: steps\[\d+\]\.service\.node: no node named "wrker"/);
    const noAction = calicoLab.replace('service: { node: worker, name: bird, action: stop }', 'service: { node: worker, name: bird, action: restart }');
    expect(() => parseLab(noAction, 'bad.yaml')).to.throw(/steps\[\d+\]\.service\.action/);
  });

  it('stops only the recorded PID and starts the plugin\'s command again, naming what is wrong otherwise', async () => {
    const calls: string[] = [];
    const state = { state: { processes: [{ pid: 4242, startTime: 1, name: 'bird', node: 'worker' }] } };
    const backend = {
      async stop({ pid, node }: { pid: number; node: string }) {
        calls.push(`stop ${pid} on ${node}`);
        state.state.processes = state.state.processes.filter((p) => !(p.pid === pid && p.node === node));
      },
      async start(node: string, name: string, argv: string[]) {
        calls.push(`start ${name} on ${node}: ${argv.join(' ')}`);
        state.state.processes.push({ pid: 4343, startTime: 2, name, node });
        return { pid: 4343, node, log: '' };
      },
    };
    const services = new NodeServices(backend as any, state as any, () => ({ bird: ['bird', '-f'], 'calico-node': ['node'] }));
    expect(await services.stop('master', 'bird').catch((e: Error) => e.message)).to.equal('no service "bird" is running on master (running there: nothing)');
    expect(await services.stop('worker', 'bird').catch((e: Error) => e.message)).to.equal('stopped bird on worker (pid 4242)');
    expect(await services.stop('worker', 'bird').catch((e: Error) => e.message)).to.equal('no service "bird" is running on worker (running there: nothing)');
    expect(await services.start('worker', 'birdd').catch((e: Error) => e.message)).to.equal('"birdd" is not a service the network runs on worker (services: bird, calico-node)');
    expect(await services.start('worker', 'bird')).to.equal('started bird on worker (pid 4343)');
    expect(await services.start('worker', 'bird').catch((e: Error) => e.message)).to.equal('bird is already running on worker (pid 4343)');
    expect(calls).to.deep.equal(['stop 4242 on worker', 'start bird on worker: bird -f']);
  });
});
