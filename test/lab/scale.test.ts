// A lab far beyond a lesson's size: 300 pods on flannel-host-gw's two nodes,
// brought up through the batched pods phase, checked against the kernel and
// torn down to nothing. (Timing belongs to `npm run bench:scale`, not here.)
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { isRunning } from '../../src/lab/processes.js';
import { parseCidr, contains, parseIp } from '../../src/net/ipnet.js';
import { leftovers } from '../helpers/lab.js';
import { ETCD_CLIENT_PORT, etcdPut } from '../../src/datapaths/etcd/server.js';
import { FLANNEL_PREFIX } from '../../src/datapaths/flannel/install.js';
import { Ip } from '../../src/net/ip.js';
import { waitUntil } from '../../src/util/wait.js';

const PODS = 300;

const labText = `name: scale-300
description: ${PODS} nginx pods on two flannel host-gw nodes
mode: route
topology:
  underlay: 192.168.10.0/24
  nodes:
    - { name: master, address: 192.168.10.210 }
    - { name: worker, address: 192.168.10.220 }
network:
  plugin: flannel
  podCIDR: 10.10.0.0/16
  subnetLen: 24
  backend: host-gw
workloads:
  - { name: nginx, image: nginx, replicas: ${PODS} }
`;

const NODES = 12;
const nodesText = `name: scale-nodes
description: ${NODES} flannel vxlan nodes, their agents started together
mode: overlay
topology:
  underlay: 192.168.10.0/24
  nodes:
${Array.from({ length: NODES }, (_, i) => `    - { name: n${i}, address: 192.168.10.${10 + i} }`).join('\n')}
network:
  plugin: flannel
  podCIDR: 10.10.0.0/16
  subnetLen: 24
  backend: vxlan
workloads:
  - { name: nginx, image: nginx, replicas: ${NODES} }
`;

describe(`lab: ${PODS} pods on flannel-host-gw; ${NODES} flannel-vxlan nodes`, function () {
  this.timeout(600_000);
  const dir = mkdtempSync(join(tmpdir(), 'cnilab-scale-test-'));
  const file = join(dir, 'scale-300.yaml');
  const nodesFile = join(dir, 'scale-nodes.yaml');
  before(() => {
    requireBuilt();
    writeFileSync(file, labText);
    writeFileSync(nodesFile, nodesText);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`brings up ${PODS} pods with distinct addresses in their node's subnet, reachable across nodes, and leaves nothing after down`, async () => {
    const inst = LabInstance.open(file, { name: 'scale-300' }, new QuietReporter());
    let pids: number[] = [];
    try {
      await inst.up();
      const pods = inst.pods.list();
      // Every pod, in name order, running, spread in turn over the two nodes.
      expect(pods.map((p) => p.name)).to.deep.equal(Array.from({ length: PODS }, (_, i) => `nginx-${i}`));
      expect(pods.every((p) => p.status === 'Running')).to.equal(true);
      expect(pods.filter((p) => p.node === 'master')).to.have.length(PODS / 2);
      // Distinct addresses, each in its node's /24 (master has the first lease, worker the second).
      expect(new Set(pods.map((p) => p.ip)).size).to.equal(PODS);
      const subnets = { master: parseCidr('10.10.0.0/24')!, worker: parseCidr('10.10.1.0/24')! };
      for (const p of pods) expect(contains(subnets[p.node as 'master' | 'worker'], parseIp(p.ip!)!), `${p.name} ${p.ip} on ${p.node}`).to.equal(true);
      // The kernel agrees: a port on cni0 per pod of the node.
      for (const node of ['master', 'worker']) {
        const ports = JSON.parse((await inst.backend.exec(node, ['ip', '-json', 'link', 'show', 'master', 'cni0'])).stdout) as unknown[];
        expect(ports, `ports on ${node}'s cni0`).to.have.length(PODS / 2);
      }
      // A sample across the range: each pod asks its neighbour, which lives on the other node.
      for (const i of [0, 1, 57, 148, 149, 150, 233, PODS - 2]) {
        const [a, b] = [pods[i], pods[i + 1]];
        expect(a.node).to.not.equal(b.node);
        const r = await inst.backend.podExec(a.node, a.name, ['curl', '-s', '--max-time', '5', `http://${b.ip}/`]);
        expect(r.stdout, `${a.name} → ${b.name}`).to.include(`pod ${b.name} on ${b.node}, address ${b.ip}`);
      }
      pids = inst.state.state.processes.map((p) => p.pid);
      expect(pids.length).to.be.greaterThan(PODS);
    } finally {
      await inst.down();
    }
    expect(leftovers('scale-300')).to.deep.equal([]);
    expect(pids.filter((pid) => isRunning(pid)), 'processes of the lab still running').to.deep.equal([]);
  });

  it(`starts ${NODES} flannel agents together and still gives node i the i-th /24, every node reaching the last one; quiet agents hold no ip and still follow a lease that changes`, async () => {
    const inst = LabInstance.open(nodesFile, { name: 'scale-nodes' }, new QuietReporter());
    try {
      await inst.up();
      for (let i = 0; i < NODES; i++) {
        const env = await inst.backend.readFile(`n${i}`, '/run/flannel/subnet.env');
        expect(env, `n${i}'s subnet.env`).to.match(new RegExp(`^FLANNEL_SUBNET=10\\.10\\.${i}\\.1/24$`, 'm'));
      }
      const pods = inst.pods.list();
      const last = pods.find((p) => p.node === `n${NODES - 1}`)!;
      for (const p of pods.filter((x) => x !== last)) {
        const r = await inst.backend.podExec(p.node, p.name, ['ping', '-c', '1', '-W', '2', last.ip!], { allowFailure: true });
        expect(r.exitCode, `${p.name} on ${p.node} → ${last.name} ${last.ip}: ${r.stdout}`).to.equal(0);
      }

      // Once quiet, the agents let their ip go; a lease that changes afterwards (the last node's
      // VTEP MAC) still reaches every other node, through the watch and an ip started again.
      const agents = inst.state.state.processes.filter((p) => p.name === 'flanneld').map((p) => p.pid);
      const children = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      await waitUntil(() => agents.every((pid) => children(pid) === ''), { timeoutMs: 30_000, what: 'the quiet agents to stop their ip' });
      const control = inst.lab.topology.nodes[0];
      const key = `${FLANNEL_PREFIX}/subnets/10.10.${NODES - 1}.0-24`;
      const lease = JSON.parse((await inst.backend.exec(control.name, ['etcdctl', '--endpoints', `http://127.0.0.1:${ETCD_CLIENT_PORT}`, 'get', key, '--print-value-only'], { env: { ETCDCTL_API: '3' } })).stdout);
      const mac = '02:00:00:00:0c:0b';
      await etcdPut(inst.backend, control, key, JSON.stringify({ ...lease, BackendData: { ...lease.BackendData, VtepMAC: mac } }));
      for (let i = 0; i < NODES - 1; i++) {
        const ip = new Ip(inst.backend.node(`n${i}`));
        await waitUntil(async () => (await ip.cmd('neigh', 'show', `10.10.${NODES - 1}.0`, 'dev', 'flannel.1')).includes(mac), { timeoutMs: 30_000, what: `n${i} to program the last node's new VTEP MAC` });
      }
    } finally {
      await inst.down();
    }
    expect(leftovers('scale-nodes')).to.deep.equal([]);
  });
});
