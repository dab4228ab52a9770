// The calico and calico-ipam plugins as a runtime calls them: real
// executables, run inside a node namespace against a real etcd, on real pod
// namespaces. ADD/CHECK/DEL per spec version, DEL twice and with no netns,
// undo of a failed ADD, etcd down, parallel ADDs, and dual-stack.
import { expect } from 'chai';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsPath, run, startDetached, type RunResult } from '../../src/net/exec.js';
import { addNetns, deleteNetns } from '../../src/net/netns.js';
import { Ip, type Link, type Route } from '../../src/net/ip.js';
import { stopPid } from '../../src/lab/processes.js';
import { NAME_PREFIX } from '../../src/lab/state.js';
import { CNI_BIN_DIR, requireBuilt } from '../../src/lab/paths.js';
import { POOLS_PREFIX, ASSIGNMENT_PREFIX, poolResource, type Block } from '../../src/datapaths/calico/store.js';
import { hostVethName } from '../../src/datapaths/calico/cni-plugin.js';

const NODE = `${NAME_PREFIX}calico-plugin-node`;
const ETCD = 'http://127.0.0.1:2379';
const POD_ARGS = (pod: string) => `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`;

function conf(cniVersion: string, extra: Record<string, unknown> = {}) {
  return { cniVersion, name: 'k8s-pod-network', type: 'calico', datastore_type: 'etcdv3', etcd_endpoints: ETCD, nodename: 'master', mtu: 1500, ipam: { type: 'calico-ipam' }, ...extra };
}

/** Run a plugin inside the node namespace, as a kubelet on that node would. */
function cni(command: string, pod: string, netns: string, config: Record<string, unknown>, ifname = 'eth0'): Promise<RunResult> {
  const env = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: `ctr-${pod}`, CNI_NETNS: netns, CNI_IFNAME: ifname, CNI_ARGS: POD_ARGS(pod), CNI_PATH: CNI_BIN_DIR, CNILAB_CNID_AUTOSTART: '0' };
  return run(['nsenter', `--net=${netnsPath(NODE)}`, '--', join(CNI_BIN_DIR, 'calico')], { input: JSON.stringify(config), env, allowFailure: true });
}

async function etcdctl(...args: string[]): Promise<string> {
  return (await run(['nsenter', `--net=${netnsPath(NODE)}`, '--', 'etcdctl', '--endpoints', ETCD, ...args], { env: { ...process.env, ETCDCTL_API: '3' } })).stdout;
}

async function allocations(): Promise<string[]> {
  const out = await etcdctl('get', '--prefix', '--print-value-only', ASSIGNMENT_PREFIX);
  return out.split('\n').filter(Boolean).flatMap((l) => Object.values((JSON.parse(l) as Block).allocations).map((a) => a.handle));
}

describe('calico CNI plugin on real namespaces with etcd', function () {
  this.timeout(60_000);
  const node = new Ip(NODE);
  const pods: string[] = [];
  let etcdPid = 0;
  let dataDir = '';

  async function podNs(name: string): Promise<string> {
    const ns = `${NAME_PREFIX}calico-plugin-pod-${name}`;
    pods.push(ns);
    await addNetns(ns);
    await new Ip(ns).cmd('link', 'set', 'lo', 'up');
    return netnsPath(ns);
  }

  before(async () => {
    requireBuilt();
    await addNetns(NODE);
    await node.cmd('link', 'set', 'lo', 'up');
    dataDir = mkdtempSync(join(tmpdir(), 'cnilab-calico-etcd-'));
    const devnull = openSync('/dev/null', 'w');
    etcdPid = startDetached(['nsenter', `--net=${netnsPath(NODE)}`, '--', 'etcd', '--data-dir', dataDir, '--listen-client-urls', ETCD, '--advertise-client-urls', ETCD, '--listen-peer-urls', 'http://127.0.0.1:2380', '--log-level', 'error', '--heartbeat-interval', '10', '--election-timeout', '100'], { stdout: devnull, stderr: devnull });
    closeSync(devnull);
    for (let i = 0; ; i++) {
      const r = await run(['nsenter', `--net=${netnsPath(NODE)}`, '--', 'curl', '-s', '--max-time', '1', `${ETCD}/health`], { allowFailure: true });
      if (r.stdout.includes('"health":"true"')) break;
      if (i > 200) throw new Error('etcd did not start');
      await new Promise((r) => setTimeout(r, 25));
    }
    const pool = { name: 'default-ipv4-ippool', cidr: '10.244.0.0/16', blockSize: 26, vxlanMode: 'Never' as const, ipipMode: 'Never' as const };
    await etcdctl('put', POOLS_PREFIX + pool.name, JSON.stringify(poolResource(pool)));
  });

  after(async () => {
    if (etcdPid) await stopPid(etcdPid);
    for (const ns of [...pods, NODE]) await deleteNetns(ns);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  for (const version of ['0.4.0', '1.0.0', '1.1.0']) {
    it(`[${version}] ADD wires a cali veth with proxy ARP and a /32 route; CHECK passes; DEL removes it all, twice and with no netns`, async () => {
      const pod = `p${version.replaceAll('.', '')}`;
      const netns = await podNs(pod);
      const add = await cni('ADD', pod, netns, conf(version));
      expect(add.exitCode, add.stdout).to.equal(0);
      const result = JSON.parse(add.stdout);
      const cali = hostVethName({ args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: pod }, containerId: '' });
      expect(result.cniVersion).to.equal(version);
      expect(result.interfaces[0]).to.deep.equal({ name: cali, mac: 'ee:ee:ee:ee:ee:ee' });
      const address: string = result.ips[0].address;
      expect(address).to.match(/^10\.244\.0\.\d+\/32$/);
      const ip = address.split('/')[0];

      const host = (await node.json<Link[]>('link', 'show', 'dev', cali))[0];
      expect(host.address).to.equal('ee:ee:ee:ee:ee:ee');
      expect(await node.readSysctl(`net.ipv4.conf.${cali}.proxy_arp`)).to.equal('1');
      expect(await node.readSysctl(`net.ipv4.neigh.${cali}.proxy_delay`)).to.equal('0');
      expect((await node.routes('dev', cali)).map((r) => `${r.dst} ${r.scope}`)).to.deep.equal([`${ip} link`]);
      const podRoutes = await new Ip(netns).json<Route[]>('route', 'show');
      expect(podRoutes.map((r) => `${r.dst} ${r.gateway ?? ''} ${(r.flags ?? []).join(',')}`.trim())).to.deep.equal(['default 169.254.1.1 onlink', '169.254.1.1']);
      expect(await allocations()).to.include(`k8s-pod-network.ctr-${pod}`);

      const check = await cni('CHECK', pod, netns, { ...conf(version), prevResult: result });
      expect(check.exitCode, check.stdout).to.equal(0);

      for (const ns of [netns, netns, '']) {
        const del = await cni('DEL', pod, ns, conf(version));
        expect(del.exitCode, `DEL with CNI_NETNS="${ns}": ${del.stdout}`).to.equal(0);
      }
      expect(await node.link(cali)).to.equal(undefined);
      expect(await new Ip(netns).link('eth0')).to.equal(undefined);
      expect(await allocations()).to.not.include(`k8s-pod-network.ctr-${pod}`);
    });
  }

  it('a failed ADD leaves neither a veth nor an address behind', async () => {
    const netns = await podNs('undo');
    expect((await cni('ADD', 'undo', netns, conf('1.0.0'))).exitCode).to.equal(0);
    // A second attachment in the same namespace fails late (its default route exists already), after IPAM.
    const second = await cni('ADD', 'undo-2', netns, conf('1.0.0'), 'eth1');
    expect(second.exitCode).to.not.equal(0);
    expect(JSON.parse(second.stdout).msg).to.match(/File exists/);
    expect(await node.link(hostVethName({ args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'undo-2' }, containerId: '' }))).to.equal(undefined);
    expect(await allocations()).to.not.include('k8s-pod-network.ctr-undo-2');
    // The same pod again is refused before IPAM: its address stays its own.
    const again = await cni('ADD', 'undo', netns, conf('1.0.0'));
    expect(JSON.parse(again.stdout)).to.include({ code: 7 });
    expect(JSON.parse(again.stdout).msg).to.match(/already exists on the node: pod undo is attached already/);
    expect(await allocations()).to.include('k8s-pod-network.ctr-undo');
    expect((await cni('DEL', 'undo', netns, conf('1.0.0'))).exitCode).to.equal(0);
  });

  it('with etcd unreachable, ADD says try again later (code 11) and leaves no veth', async () => {
    const netns = await podNs('noetcd');
    const r = await cni('ADD', 'noetcd', netns, conf('1.0.0', { etcd_endpoints: 'http://127.0.0.1:23790' }));
    expect(JSON.parse(r.stdout)).to.include({ code: 11 });
    expect(JSON.parse(r.stdout).msg).to.match(/etcd at http:\/\/127\.0\.0\.1:23790\) did not answer: ECONNREFUSED/);
    expect(await node.link(hostVethName({ args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'noetcd' }, containerId: '' }))).to.equal(undefined);
  });

  it('parallel ADDs on one node get distinct addresses from its block', async () => {
    const names = Array.from({ length: 5 }, (_, i) => `par${i}`);
    const netnss = await Promise.all(names.map((n) => podNs(n)));
    const results = await Promise.all(names.map((n, i) => cni('ADD', n, netnss[i], conf('1.1.0'))));
    for (const r of results) expect(r.exitCode, r.stdout).to.equal(0);
    const ips = results.map((r) => JSON.parse(r.stdout).ips[0].address);
    expect(new Set(ips).size).to.equal(5);
    await Promise.all(names.map((n, i) => cni('DEL', n, netnss[i], conf('1.1.0'))));
    expect(await allocations()).to.deep.equal([]);
  });

  it('assign_ipv6 with no IPv6 pool is refused naming the field, leaving no veth and no IPv4 address', async () => {
    const netns = await podNs('nov6');
    const r = await cni('ADD', 'nov6', netns, conf('1.0.0', { ipam: { type: 'calico-ipam', assign_ipv6: 'true' } }));
    expect(JSON.parse(r.stdout)).to.include({ code: 7 });
    expect(JSON.parse(r.stdout).msg).to.match(/ipam\.assign_ipv6: no IPv6 pool in the datastore/);
    expect(await node.link(hostVethName({ args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'nov6' }, containerId: '' }))).to.equal(undefined);
    expect(await allocations()).to.not.include('k8s-pod-network.ctr-nov6');
  });

  it('dual-stack: a /32 and a /128, host routes and sysctls per family, ::/0 via the cali link-local; CHECK passes; DEL frees both', async () => {
    const pool6 = { name: 'default-ipv6-ippool', cidr: 'fd00:10:244::/48', blockSize: 122, vxlanMode: 'Never' as const, ipipMode: 'Never' as const };
    await etcdctl('put', POOLS_PREFIX + pool6.name, JSON.stringify(poolResource(pool6)));
    const dual = conf('1.1.0', { ipam: { type: 'calico-ipam', assign_ipv4: 'true', assign_ipv6: 'true' } });
    const netns = await podNs('dual');
    const add = await cni('ADD', 'dual', netns, dual);
    expect(add.exitCode, add.stdout).to.equal(0);
    const result = JSON.parse(add.stdout);
    const [v4, v6] = result.ips.map((i: { address: string }) => i.address);
    expect(v4).to.match(/^10\.244\.0\.\d+\/32$/);
    expect(v6).to.match(/^fd00:10:244::[0-9a-f]*\/128$/);
    expect(result.routes).to.deep.equal([
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
      { dst: '::/0', gw: 'fe80::ecee:eeff:feee:eeee' },
    ]);
    const cali = hostVethName({ args: { K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'dual' }, containerId: '' });
    expect(await node.readSysctl(`net.ipv4.conf.${cali}.proxy_arp`)).to.equal('1');
    expect(await node.readSysctl(`net.ipv6.conf.${cali}.proxy_ndp`)).to.equal('1');
    expect(await node.readSysctl(`net.ipv6.conf.${cali}.forwarding`)).to.equal('1');
    const v6Routes = await node.json<Route[]>('-6', 'route', 'show', 'dev', cali);
    expect(v6Routes.map((r) => r.dst)).to.include(v6.split('/')[0]);
    const podRoutes = await new Ip(netns).json<Route[]>('-6', 'route', 'show', 'default');
    expect(podRoutes.map((r) => `${r.dst} ${r.gateway}`)).to.deep.equal(['default fe80::ecee:eeff:feee:eeee']);
    // The gateway answers: the pod reaches the node's side of the veth over IPv6.
    const ping = await run(['nsenter', `--net=${netns}`, '--', 'ping', '-6', '-c', '1', '-W', '2', 'fe80::ecee:eeff:feee:eeee%eth0'], { allowFailure: true });
    expect(ping.stdout).to.include('1 received');

    const check = await cni('CHECK', 'dual', netns, { ...dual, prevResult: result });
    expect(check.exitCode, check.stdout).to.equal(0);
    await node.cmd('-6', 'route', 'del', v6.split('/')[0], 'dev', cali);
    const broken = await cni('CHECK', 'dual', netns, { ...dual, prevResult: result });
    expect(JSON.parse(broken.stdout).msg).to.match(new RegExp(`no route ${v6.split('/')[0]} dev ${cali}`));

    expect((await cni('DEL', 'dual', netns, dual)).exitCode).to.equal(0);
    expect(await allocations()).to.not.include('k8s-pod-network.ctr-dual');
    expect(await node.link(cali)).to.equal(undefined);
  });
});
