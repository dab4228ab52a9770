// Labs on the hosts backend, against machines reached over ssh. The machines
// here are containers of cnilab's node image on a private dockerd, each running
// Debian's sshd (started per connection by the ssh client's ProxyCommand,
// `docker exec -i … sshd -i`), on an underlay of their own (172.31.7.0/24, not
// the lessons' 192.168.10.0/24). Nothing of cnilab is mounted into them: the
// backend copies its bundle and Node.js over the connection. After each lab
// the machines must look exactly as before: links, addresses, routes, rules,
// iptables, mounts, sysctls, processes and every file.
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { execa } from 'execa';
import { LabInstance, runLab } from '../../src/runner/runner.js';
import { missingBpfFeatures } from '../../src/datapaths/cilium/install.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { ROOT } from '../../src/lab/paths.js';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { loadLab } from '../../src/datapaths/index.js';
import { readState } from '../../src/lab/state.js';
import { dockerExec } from '../../src/topologies/docker.js';
import { failures } from '../helpers/lab.js';
import { startTestEngine, stopTestEngine, type TestEngine } from '../helpers/private-engine.js';
import { startSshHosts } from '../helpers/ssh-hosts.js';
import { workshopChecks, WORKSHOP_LAB } from '../helpers/workshop-checks.js';

const SUBNET = '172.31.7.0/24';
const HOSTS = { m1: '172.31.7.11', w1: '172.31.7.12' };
/** The underlay device of each machine: w1's is not called eth0, as on many real machines. */
const IFACE: Record<string, string> = { m1: 'eth0', w1: 'ens5' };
/** Everything a lab could leave on a machine, as text to compare. */
const VIEW = [
  'ip -o link | sed "s/^[0-9]*: //"',
  'ip -o -4 addr',
  'ip -4 route show table all',
  'ip -4 rule',
  'tc qdisc show',
  'ip netns list',
  'iptables-save | grep -v "^#" | sed "s/\\[[0-9]*:[0-9]*\\]//"',
  'nft list tables',
  'cut -d" " -f5 /proc/self/mountinfo | sort',
  'sysctl net.ipv4.ip_forward net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter',
  'ps -e -o comm= | grep -v -x -e ps -e sh -e sshd -e sort -e grep | sort',
  'find / -xdev -path /proc -prune -o -path /sys -prune -o -path /dev -prune -o -path /var/log -prune -o -print | sort',
  'ls -A /var/log /sys/fs/bpf 2>/dev/null',
].join('; echo ---; ');

type View = Record<string, string>;

/** What differs between two views, line by line per machine: "m1 + link flannel.1 …", "w1 - …". */
function changes(before: View, after: View): string[] {
  return Object.keys(before).flatMap((h) => {
    const [b, a] = [before[h].split('\n'), after[h].split('\n')];
    return [...a.filter((l) => !b.includes(l)).map((l) => `${h} + ${l}`), ...b.filter((l) => !a.includes(l)).map((l) => `${h} - ${l}`)];
  });
}

describe('hosts backend: labs on machines over ssh', function () {
  this.timeout(240_000);
  let t: TestEngine | undefined;
  let dir = '';
  let inventory = '';
  const machines: Record<string, Docker.Container> = {};

  const view = async (): Promise<View> => Object.fromEntries(await Promise.all(Object.entries(machines).map(async ([h, c]) => [h, (await dockerExec(c, ['sh', '-c', VIEW])).stdout])));
  const cli = (...args: string[]) => execa(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], { reject: false });

  before(async function () {
    this.timeout(15 * 60_000);
    t = await startTestEngine(this, { ssh: 'openssh-client', 'ssh-keygen': 'openssh-client' });
    if (!t) return;
    dir = t.dir;
    const hosts = await startSshHosts(t, {
      subnet: SUBNET,
      gateway: '172.31.7.254',
      nodes: { master: { host: 'm1', address: HOSTS.m1, iface: IFACE.m1 }, worker: { host: 'w1', address: HOSTS.w1, iface: IFACE.w1 } },
    });
    inventory = hosts.inventory;
    Object.assign(machines, hosts.machines);
  });

  after(async function () {
    this.timeout(120_000);
    await stopTestEngine(t);
  });

  it('a bad inventory is refused with file:line field, before anything is made', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'sshConfig: ./ssh_config\nnodes:\n  master: { host: m1, interface: eth0 }\n  wrker: { host: w1, interface: eth0 }\n');
    const refused = (inventory?: string) => runLab('flannel-vxlan', { name: 'hst-bad', backend: 'hosts', inventory }, new QuietReporter()).then(() => 'ran', (e: Error) => e.message);
    expect(await refused(bad)).to.equal(`${bad}:4: nodes.wrker: the lab has no node "wrker" (its nodes: master, worker)`);
    writeFileSync(bad, 'sshConfig: ./ssh_config\nnodes:\n  master: { host: m1, interface: eth0 }\n  worker: { host: m1, interface: eth0 }\n');
    expect(await refused(bad)).to.equal(`${bad}:4: nodes.worker.host: m1 is node master already: each node is a machine of its own`);
    expect(await refused(undefined)).to.match(/needs --inventory/);
    expect(readState('hst-bad')).to.equal(undefined);
  });

  it('a host without the interface named: the error says so and the hosts are as before', async () => {
    const before = await view();
    const odd = join(dir, 'odd.yaml');
    writeFileSync(odd, 'sshConfig: ./ssh_config\nnodes:\n  master: { host: m1, interface: eth0 }\n  worker: { host: w1, interface: eth9 }\n');
    const r = await runLab('flannel-vxlan', { name: 'hst-odd', backend: 'hosts', inventory: odd }, new QuietReporter());
    expect(r.error).to.include('w1 (node worker) has no interface eth9');
    expect(changes(before, await view())).to.deep.equal([]);
  });

  it('macvlan is refused: its pods would take addresses on the machines\' own network', async () => {
    const r = await runLab('macvlan', { name: 'hst-macvlan', backend: 'hosts', inventory }, new QuietReporter());
    expect(r.skipped).to.match(/macvlan gives pods addresses of the underlay itself; on hosts the underlay is the machines' own network/);
    expect(readState('hst-macvlan')).to.equal(undefined);
  });

  // Every lab cnilab ships but macvlan's (refused above): services (kube-proxy, the cluster DNS),
  // policies whose ipBlocks name the underlay, the lessons. A lab the hosts cannot build says why.
  // The inventory has two machines, master and worker: a lab of more nodes (calico-bgp-rr's four)
  // is refused by the inventory, naming the nodes without a machine, before anything is made.
  const nodesOf = (lab: string) => loadLab(lab).lab.topology.nodes.map((n) => n.name);
  const onTwoMachines = (lab: string) => nodesOf(lab).every((n) => n === 'master' || n === 'worker');
  for (const lab of listLabFiles().filter((l) => !onTwoMachines(l))) {
    it(`${lab}: needs ${nodesOf(lab).length} machines, the test has two: the inventory is refused naming the nodes without one, and the hosts are as before`, async () => {
      const before = await view();
      const refusal = await runLab(lab, { name: `hst-${lab}`, backend: 'hosts', inventory, install: false }, new QuietReporter()).then(
        (r) => r.error ?? `it ran (ok: ${r.ok})`,
        (e: Error) => e.message,
      );
      expect(refusal).to.match(/the lab has no node "master"|no host for /);
      expect(readState(`hst-${lab}`)).to.equal(undefined);
      expect(changes(before, await view())).to.deep.equal([]);
    });
  }
  for (const lab of listLabFiles().filter((l) => !l.startsWith('macvlan') && onTwoMachines(l))) {
    it(`${lab}: every lesson step passes on the hosts' own addressing, and the hosts are given back as they were`, async () => {
      const before = await view();
      const r = await runLab(lab, { name: `hst-${lab}`, backend: 'hosts', inventory, install: false }, new QuietReporter());
      if (r.skipped) console.log(`      ${r.skipped}`);
      else expect(r.ok, failures(r) + (r.error ?? '')).to.equal(true);
      expect(changes(before, await view())).to.deep.equal([]);
    });
  }

  it('bench runs on the hosts: TCP and request/response against their own underlay, and the hosts are given back as they were', async function () {
    this.timeout(300_000);
    const before = await view();
    const results = join(dir, 'results');
    const r = await cli('bench', 'flannel-host-gw', '--backend', 'hosts', '--inventory', inventory, '--name', 'hst-bench', '--tests', 'tcp,rr', '--repeat', '1', '--duration', '0.2', '--no-install', '--results-dir', results, '--json');
    expect(r.exitCode, r.stdout + r.stderr).to.equal(0);
    const summary = JSON.parse(r.stdout) as { labs: { lab: string; status: string; reason?: string; file?: string }[] };
    expect(summary.labs.map((o) => o.reason ?? o.status)).to.deep.equal(['ok']);
    const result = JSON.parse(readFileSync(summary.labs[0].file!, 'utf8')) as { backend: string; pairs: { name: string }[] };
    expect(result.backend).to.equal('hosts');
    expect(result.pairs.map((p) => p.name)).to.include('underlay');
    expect(changes(before, await view())).to.deep.equal([]);
  });

  // After the tests above (mocha runs a suite's own tests before its inner suites).
  describe('a lab left up: later commands find the hosts in its state, a second lab is refused, down gives the hosts back', function () {
    const lab = 'hst-left';
    let given: View = {};
    before(async function () {
      this.timeout(300_000);
      given = await view();
      const up = await cli('up', WORKSHOP_LAB, '--name', lab, '--backend', 'hosts', '--inventory', inventory, '-q');
      expect(up.exitCode, up.stderr).to.equal(0);
    });
    after(async function () {
      this.timeout(120_000);
      const down = await cli('down', lab);
      expect(down.exitCode, down.stderr).to.equal(0);
      expect(changes(given, await view())).to.deep.equal([]);
      expect(readState(lab)).to.equal(undefined);
    });

    it('the state has each machine\'s address and interface; a node is the machine itself, its hostname and address', async () => {
      expect(readState(lab)?.topology).to.deep.equal({ underlay: SUBNET, nodes: [
          { name: 'master', address: HOSTS.m1, iface: IFACE.m1 },
          { name: 'worker', address: HOSTS.w1, iface: IFACE.w1 },
        ],
      });
      const exec = await cli('exec', '--lab', lab, 'master', '--', 'sh', '-c', 'hostname; ip -o -4 addr show eth0');
      expect(exec.stdout).to.match(/^m1\n/).and.include(`inet ${HOSTS.m1}/24`);
    });

    it('the hosts are taken: another lab on them is refused and changes nothing there', async () => {
      const second = await runLab('flannel-host-gw', { name: 'hst-second', backend: 'hosts', inventory }, new QuietReporter());
      expect(second.error).to.match(/m1 \(node master\) already holds another lab's .*hst-left/);
      expect(readState(lab)?.status).to.equal('up');
      expect(readState('hst-second')).to.equal(undefined);
    });

    it('preflight\'s tc BPF probe of the cilium datapath, sent over, loads on each machine\'s own kernel and leaves nothing there', async () => {
      const { backend } = LabInstance.attach(readState(lab)!, new QuietReporter());
      const earlier = await view();
      expect(await Promise.all(['master', 'worker'].map((n) => missingBpfFeatures(backend.node(n))))).to.deep.equal([[], []]);
      expect(changes(earlier, await view())).to.deep.equal([]);
    });

    describe('the workshop commands (the list every backend runs)', () => workshopChecks(() => ({ backend: 'hosts', name: lab })));
  });
});
