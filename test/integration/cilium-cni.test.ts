// cilium-cni and the cilium agent on the real kernel: a test node namespace
// with a BPF filesystem of its own, the real agent (started and stopped by
// PID), and the built plugin called exactly as a runtime calls it.
import { expect } from 'chai';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNetns, netnsPath, run, startDetached } from '../../src/net/exec.js';
import { Ip, type Link } from '../../src/net/ip.js';
import { addNetns, deleteNetns, listNetns } from '../../src/net/netns.js';
import { dumpMap, mountBpffs, pinnedProgramIds, programLoaded } from '../../src/net/bpf.js';
import { decodeCounters, decodeEndpointInfo, decodeIpv4, encodeIpv6 } from '../../src/datapaths/cilium/maps.js';
import { pinLayout, type CiliumAgentConfig } from '../../src/datapaths/cilium/agent.js';
import { compileDatapath } from '../../src/datapaths/cilium/install.js';
import { stopPid } from '../../src/lab/processes.js';
import { buildPlugins } from '../helpers/cni-sandbox.js';

const PREFIX = `cnitest-cil-${process.pid}-`;
const NODE = `${PREFIX}node`;
const BIN = resolve('dist/cni/bin');
const SUBNET = '10.251.0.0/24';
const SUBNET6 = 'fd00:251::/64';

/** Poll until `cond` holds; generous, since CI machines are shared and slow at times. */
async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

interface Out {
  exitCode: number;
  stdout: string;
  json: any;
}

describe('cilium-cni with the cilium agent on the real kernel', function () {
  this.timeout(120_000);
  let dir: string;
  let bpffs: string;
  let agentPid = 0;
  let agentLog: string;
  let ids: number[] = [];
  let containers = 0;
  const node = new Ip(NODE);

  const conf = (extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'cilium',
    type: 'cilium-cni',
    socket: join(dir, 'cilium.sock'),
    mtu: 1500,
    ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET }]], dataDir: join(dir, 'leases') },
    ...extra,
  });

  async function cni(command: string, c: Record<string, unknown>, netns: string, containerId: string): Promise<Out> {
    const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: BIN, CNILAB_CNID_AUTOSTART: '0', CNI_ARGS: `K8S_POD_NAME=${containerId}` };
    const r = await run(inNetns(NODE, join(BIN, 'cilium-cni'), []), { input: JSON.stringify(c), env, allowFailure: true });
    return { exitCode: r.exitCode, stdout: r.stdout, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
  }

  async function container(): Promise<string> {
    return addNetns(`${PREFIX}ctr${++containers}`);
  }

  const leases = () => (existsSync(join(dir, 'leases', 'cilium')) ? readdirSync(join(dir, 'leases', 'cilium')).filter((f) => /^\d/.test(f)) : []);
  const maps = () => pinLayout(bpffs);
  const lxcDevices = async () => (await node.links()).map((l) => l.ifname).filter((n) => n.startsWith('lxc'));

  before(async () => {
    await buildPlugins();
    dir = mkdtempSync(join(tmpdir(), 'cnitest-cil-'));
    bpffs = join(dir, 'bpffs');
    await addNetns(NODE);
    await node.batch([
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0'],
      ['addr', 'add', '192.168.77.1/24', 'dev', 'eth0'],
      ['link', 'set', 'eth0', 'up'],
      ['link', 'set', 'peer0', 'up'],
    ]);
    await node.sysctl({ 'net.ipv4.ip_forward': 1 });
    await mountBpffs(bpffs);
    const config: CiliumAgentConfig = {
      node: 'test',
      nodeIp: '192.168.77.1',
      mode: 'native',
      underlayDevice: 'eth0',
      nodes: [{ name: 'test', address: '192.168.77.1', podCIDR: SUBNET }],
      bpffs,
      objects: await compileDatapath(),
      socket: join(dir, 'cilium.sock'),
      readyFile: join(dir, 'ready.json'),
      vni: 1,
      tunnelPort: 8472,
    };
    writeFileSync(join(dir, 'agent.json'), JSON.stringify(config));
    agentLog = join(dir, 'agent.log');
    const fd = openSync(agentLog, 'a');
    agentPid = startDetached(inNetns(NODE, process.execPath, [resolve('dist/agents/cilium-agent.js'), '--config', join(dir, 'agent.json')]), { stdout: fd, stderr: fd });
    closeSync(fd);
    expect(await waitFor(() => existsSync(config.readyFile)), `agent not ready: ${readFileSync(agentLog, 'utf8')}`).to.equal(true);
    ids = await pinnedProgramIds(join(bpffs, 'cilium', 'progs'));
  });

  after(async () => {
    if (agentPid) await stopPid(agentPid);
    for (const n of listNetns().filter((n) => n.startsWith(PREFIX))) await deleteNetns(n);
    if (bpffs && existsSync(bpffs)) await run(['umount', bpffs], { allowFailure: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
    // The programs go once their namespace and their pins are gone (namespaces are freed in the background).
    await waitFor(async () => !(await Promise.all(ids.map(programLoaded))).some(Boolean));
    for (const id of ids) expect(await programLoaded(id), `BPF program ${id} still loaded`).to.equal(false);
  });

  it('the agent pinned three programs and attached from_netdev to eth0', async () => {
    expect(ids).to.have.length(3);
    const tc = await run(inNetns(NODE, 'tc', ['filter', 'show', 'dev', 'eth0', 'ingress']));
    expect(tc.stdout).to.match(/bpf .*direct-action .*name from_netdev/);
  });

  it('the map layouts in TypeScript match the C structs (BTF of the compiled object)', async () => {
    const { lxc } = await compileDatapath();
    const btf = (await run(['bpftool', 'btf', 'dump', 'file', lxc])).stdout;
    const size = (name: string) => Number(new RegExp(`STRUCT '${name}' size=(\\d+)`).exec(btf)?.[1]);
    const names = ['ipv4', 'endpoint_info', 'remote_key', 'endpoint_counters', 'node_config', 'ipcache_value', 'policy_key', 'policy_value', 'policy_state', 'ct_key', 'drop_key', 'ipv6', 'remote_key6', 'remote_node6', 'ct_key6'];
    expect(Object.fromEntries(names.map((n) => [n, size(n)]))).to.deep.equal({
      ipv4: 4,
      endpoint_info: 16,
      remote_key: 8,
      endpoint_counters: 32,
      node_config: 12,
      ipcache_value: 4,
      policy_key: 12,
      policy_value: 8,
      policy_state: 4,
      ct_key: 20,
      drop_key: 8,
      ipv6: 16,
      remote_key6: 20,
      remote_node6: 20,
      ct_key6: 44,
    });
  });

  it('ADD: an lxc device with the program on its ingress, a /32 and a gateway answered in BPF, the pod in the maps', async () => {
    const ctr = await container();
    const out = await cni('ADD', conf(), ctr, 'pod-a');
    expect(out.exitCode, out.stdout).to.equal(0);
    const [host, inside] = out.json.interfaces;
    expect(host.name).to.match(/^lxc[0-9a-f]{12}$/);
    expect(inside).to.include({ name: 'eth0', sandbox: ctr });
    expect(out.json.ips[0].address).to.match(/^10\.251\.0\.\d+\/32$/);
    expect(out.json.ips[0].gateway).to.equal('169.254.1.1');
    const ip = out.json.ips[0].address.split('/')[0];

    const routes = await new Ip(ctr).routes();
    expect(routes.find((r) => r.dst === 'default')).to.include({ gateway: '169.254.1.1', dev: 'eth0' });
    const lxc = (await node.link(host.name))!;
    expect(lxc.master, 'no bridge').to.equal(undefined);
    const tc = await run(inNetns(NODE, 'tc', ['filter', 'show', 'dev', host.name, 'ingress']));
    expect(tc.stdout).to.match(/bpf .*direct-action .*name from_container/);

    const eps = (await dumpMap(maps().map('endpoints'))).map((e) => ({ ip: decodeIpv4(e.key), ...decodeEndpointInfo(e.value) }));
    expect(eps).to.deep.equal([{ ip, ifindex: lxc.ifindex, mac: inside.mac, nodeMac: lxc.address }]);
    const counters = await dumpMap(maps().map('counters'));
    expect(counters.map((c) => decodeIpv4(c.key))).to.deep.equal([ip]);

    const check = await cni('CHECK', { ...conf(), prevResult: out.json }, ctr, 'pod-a');
    expect(check.exitCode, check.stdout).to.equal(0);

    const del = await cni('DEL', conf(), ctr, 'pod-a');
    expect(del.exitCode, del.stdout).to.equal(0);
    expect(await lxcDevices()).to.deep.equal([]);
    expect(await dumpMap(maps().map('endpoints'))).to.deep.equal([]);
    expect(await dumpMap(maps().map('counters'))).to.deep.equal([]);
    expect(leases()).to.deep.equal([]);
  });

  it('two pods on the node reach each other through BPF alone, and their counters move', async () => {
    const [a, b] = [await container(), await container()];
    const ra = await cni('ADD', conf(), a, 'pod-b');
    const rb = await cni('ADD', conf(), b, 'pod-c');
    expect(ra.exitCode, ra.stdout).to.equal(0);
    expect(rb.exitCode, rb.stdout).to.equal(0);
    const ipA = ra.json.ips[0].address.split('/')[0];
    const ipB = rb.json.ips[0].address.split('/')[0];
    const ping = await run(inNetns(a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', ipB]), { allowFailure: true });
    expect(ping.stdout).to.match(/3 received/);
    expect(ping.stdout, 'one routed hop, made in BPF').to.match(/ttl=63/);
    const counters = Object.fromEntries((await dumpMap(maps().map('counters'))).map((c) => [decodeIpv4(c.key), decodeCounters(c.value)]));
    expect(counters[ipA]).to.include({ txPackets: 3, rxPackets: 3 });
    expect(counters[ipB]).to.include({ txPackets: 3, rxPackets: 3 });
    for (const [ns, id] of [[a, 'pod-b'], [b, 'pod-c']]) expect((await cni('DEL', conf(), ns, id)).exitCode).to.equal(0);
  });

  it('dual-stack ADD: a /128 beside the /32, a default route via fe80::1 answered by NDP in BPF, the pod in endpoints6; DEL takes it out', async () => {
    const dual = conf({ ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET }], [{ subnet: SUBNET6 }]], dataDir: join(dir, 'leases') } });
    const [a, b] = [await container(), await container()];
    const ra = await cni('ADD', dual, a, 'pod-v6a');
    const rb = await cni('ADD', dual, b, 'pod-v6b');
    expect(ra.exitCode, ra.stdout).to.equal(0);
    expect(rb.exitCode, rb.stdout).to.equal(0);
    const v6 = (r: Out) => r.json.ips.find((i: { address: string }) => i.address.includes(':'));
    expect(v6(ra)).to.deep.include({ gateway: 'fe80::1', interface: 1 });
    expect(v6(ra).address).to.match(/^fd00:251::[0-9a-f]+\/128$/);
    expect(ra.json.routes).to.deep.include({ dst: '::/0', gw: 'fe80::1' });
    const ipB6 = v6(rb).address.split('/')[0];

    const ping = await run(inNetns(a, 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', ipB6]), { allowFailure: true });
    expect(ping.stdout).to.match(/2 received/);
    expect(ping.stdout, 'one routed hop, made in BPF').to.match(/ttl=63/);
    const lxcA = (await node.link(ra.json.interfaces[0].name))!;
    const neigh = await run(inNetns(a, 'ip', ['-6', 'neigh', 'show', 'fe80::1']));
    expect(neigh.stdout, 'the lxc device\'s MAC, from a router').to.match(new RegExp(`lladdr ${lxcA.address} router`));

    const hexKeys = async (m: 'endpoints6' | 'lxc_ifindex') => (await dumpMap(maps().map(m))).map((e) => Buffer.from(e.key).toString('hex')).sort();
    expect(await hexKeys('endpoints6')).to.deep.equal([v6(ra), v6(rb)].map((i) => Buffer.from(encodeIpv6(i.address.split('/')[0])).toString('hex')).sort());
    expect(await hexKeys('lxc_ifindex')).to.have.length(2);
    for (const [ns, id] of [[a, 'pod-v6a'], [b, 'pod-v6b']]) expect((await cni('DEL', dual, ns, id)).exitCode).to.equal(0);
    expect(await dumpMap(maps().map('endpoints6'))).to.deep.equal([]);
    expect(await dumpMap(maps().map('lxc_ifindex'))).to.deep.equal([]);
    expect(leases()).to.deep.equal([]);
  });

  it('DEL is idempotent: twice, with an empty CNI_NETNS, and for a container never added', async () => {
    const ctr = await container();
    expect((await cni('ADD', conf(), ctr, 'pod-d')).exitCode).to.equal(0);
    expect((await cni('DEL', conf(), '', 'pod-d')).exitCode, 'empty CNI_NETNS').to.equal(0);
    expect(await lxcDevices()).to.deep.equal([]);
    expect((await cni('DEL', conf(), ctr, 'pod-d')).exitCode, 'second DEL').to.equal(0);
    expect((await cni('DEL', conf(), '', 'never-added')).exitCode, 'unknown container').to.equal(0);
    expect(leases()).to.deep.equal([]);
  });

  it('with no agent, ADD fails with code 11 naming the socket and leaves nothing; DEL still succeeds', async () => {
    const ctr = await container();
    const gone = conf({ socket: join(dir, 'nobody.sock') });
    const out = await cni('ADD', gone, ctr, 'pod-e');
    expect(out.exitCode).to.not.equal(0);
    expect(out.json.code).to.equal(11);
    expect(out.json.msg).to.include('nobody.sock');
    expect(await lxcDevices()).to.deep.equal([]);
    expect(leases()).to.deep.equal([]);
    expect((await new Ip(ctr).links()).map((l: Link) => l.ifname)).to.deep.equal(['lo']);
    expect((await cni('DEL', gone, ctr, 'pod-e')).exitCode).to.equal(0);
  });

  it('a configuration without ipam is refused with code 7 naming the field', async () => {
    const ctr = await container();
    const { ipam: _, ...noIpam } = conf();
    const out = await cni('ADD', noIpam, ctr, 'pod-f');
    expect(out.json.code).to.equal(7);
    expect(out.json.msg).to.match(/ipam: is required/);
    expect(await lxcDevices()).to.deep.equal([]);
  });

  it('the agent refuses a malformed endpoint with 400 naming the field', async () => {
    const { callAgent } = await import('../../src/datapaths/cilium/api.js');
    const r = await callAgent(join(dir, 'cilium.sock'), 'PUT', '/v1/endpoint/bad', { ip: '10.251.0.300', ifname: 'lxc0', ifindex: 5, mac: '00:00:00:00:00:01', nodeMac: '00:00:00:00:00:02' });
    expect(r.status).to.equal(400);
    expect(JSON.stringify(r.body)).to.include('endpoint.ip');
    const r6 = await callAgent(join(dir, 'cilium.sock'), 'PUT', '/v1/endpoint/bad', { ip: '10.251.0.30', ip6: '10.251.0.31', ifname: 'lxc0', ifindex: 5, mac: '00:00:00:00:00:01', nodeMac: '00:00:00:00:00:02' });
    expect(r6.status).to.equal(400);
    expect(JSON.stringify(r6.body)).to.include('endpoint.ip6');
    expect(netnsPath(NODE)).to.satisfy(existsSync);
  });
});
