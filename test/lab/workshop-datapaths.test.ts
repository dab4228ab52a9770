// diagram and trace on datapaths other than flannel's, from the kernel alone:
// Calico's routed veths with BGP routes, macvlan pods on the node network (and
// the node's shim), and Docker's bridge with source NAT between hosts.
// Captures count the pings at every hop.
import { expect } from 'chai';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { inspectLab } from '../../src/workshop/inspect.js';
import { nsById } from '../../src/workshop/model.js';
import { layoutNode } from '../../src/workshop/layout.js';
import { traceLab } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';
import { leftovers } from '../helpers/lab.js';

const nodesOf = (inst: LabInstance) => inst.lab.topology.nodes.map((n) => n.name);

describe('workshop on calico-bgp, macvlan and docker-bridge', function () {
  this.timeout(120_000);
  let cb: LabInstance;
  let mv: LabInstance;
  let db: LabInstance;

  before(async () => {
    requireBuilt();
    cb = LabInstance.open('calico-bgp', { name: 'ws-calico' }, new QuietReporter());
    mv = LabInstance.open('macvlan', { name: 'ws-macvlan' }, new QuietReporter());
    db = LabInstance.open('docker-bridge', { name: 'ws-docker' }, new QuietReporter());
    await Promise.all([cb.up(), mv.up(), db.up()]);
  });

  after(async () => {
    await Promise.all([cb?.down(), mv?.down(), db?.down()]);
    expect([...leftovers('ws-calico'), ...leftovers('ws-macvlan'), ...leftovers('ws-docker')]).to.deep.equal([]);
  });

  it('calico-bgp: no bridge, a routed cali veth per pod, and each node\'s block reached via the other node over BGP', async () => {
    const m = await inspectLab(cb.backend, cb.state.state, nodesOf(cb));
    const master = layoutNode(m, nsById(m, 'master')!);
    expect(master.bridges).to.deep.equal([]);
    expect(master.routed.map((a) => `${a.host.name.slice(0, 4)} ${a.host.mac} ${a.pod?.pod.name} ${a.pod?.gateway}`)).to.deep.equal(['cali ee:ee:ee:ee:ee:ee nginx-0 169.254.1.1', 'cali ee:ee:ee:ee:ee:ee nginx-2 169.254.1.1']);
    expect(m.nodeRoutes.map((r) => `${r.node} → ${r.toNode}: ${r.route}`)).to.deep.equal([
      'master → worker: 10.244.0.64/26 via 192.168.10.220 dev eth0 proto bird',
      'worker → master: 10.244.0.0/26 via 192.168.10.210 dev eth0 proto bird',
    ]);
  });

  it('calico-bgp: proxy ARP for 169.254.1.1, the BGP route, the worker\'s /32, every ping seen', async () => {
    const r = await traceLab(cb.backend, cb.state.state, nodesOf(cb), 'nginx-0', 'nginx-1', { capture: true });
    expect(r.delivered, r.problem).to.equal(true);
    expect(r.hops.map((h) => `${h.at} ${h.kind}`)).to.deep.equal([
      'pod/nginx-0 route',
      'pod/nginx-0 neighbour',
      'master veth',
      'master route',
      'master neighbour',
      'worker wire',
      'worker route',
      'worker neighbour',
      'pod/nginx-1 veth',
      'pod/nginx-1 deliver',
    ]);
    expect(r.hops[1].text).to.match(/^169\.254\.1\.1 is at ee:ee:ee:ee:ee:ee on eth0/);
    expect(r.hops[3].text).to.include('proto bird (learned over BGP');
    expect(r.capture?.allSeen, formatTrace(r).join('\n')).to.equal(true);
  });

  it('macvlan: the model hangs each pod off its node\'s eth0, and the shim is a macvlan of the node itself', async () => {
    const m = await inspectLab(mv.backend, mv.state.state, nodesOf(mv));
    const master = layoutNode(m, nsById(m, 'master')!);
    expect(master.macvlanPods.map((p) => `${p.parent.name} ${p.pod.pod.name}`)).to.deep.equal(['eth0 nginx-0', 'eth0 nginx-2']);
    const shim = master.others.find((l) => l.kind === 'macvlan')!;
    expect(shim.parent).to.deep.include({ ns: 'master', ifname: 'eth0' });
    expect(m.underlay).to.equal('192.168.10.0/24');
  });

  it('macvlan: across nodes through the parent and the underlay; node to pod through the shim; every ping seen', async () => {
    const far = await traceLab(mv.backend, mv.state.state, nodesOf(mv), 'nginx-0', 'nginx-1', { capture: true });
    expect(far.hops.map((h) => `${h.at} ${h.kind}`)).to.deep.equal(['pod/nginx-0 route', 'pod/nginx-0 neighbour', 'master macvlan', 'pod/nginx-1 wire', 'pod/nginx-1 deliver']);
    expect(far.capture?.allSeen, formatTrace(far).join('\n')).to.equal(true);
    const shim = await traceLab(mv.backend, mv.state.state, nodesOf(mv), 'master', 'nginx-0', { capture: true });
    expect(shim.from.ip).to.equal('192.168.10.64'); // the kernel sends from the shim's address
    expect(shim.hops.map((h) => `${h.at} ${h.kind}`)).to.deep.equal(['master route', 'master neighbour', 'pod/nginx-0 macvlan', 'pod/nginx-0 deliver']);
    expect(shim.capture?.allSeen, formatTrace(shim).join('\n')).to.equal(true);
  });

  it('docker-bridge: both pods are 172.17.0.2, so a ping to the other pod never leaves its own', async () => {
    const r = await traceLab(db.backend, db.state.state, nodesOf(db), 'nginx-0', 'nginx-1');
    expect(r.delivered).to.equal(false);
    expect(r.problem).to.match(/pod nginx-0 has the same address 172\.17\.0\.2 itself/);
  });

  it('docker-bridge: to the other node the source is masqueraded, and the captures follow the new address', async () => {
    const r = await traceLab(db.backend, db.state.state, nodesOf(db), 'nginx-0', 'worker', { capture: true });
    expect(r.delivered, r.problem).to.equal(true);
    expect(r.nat).to.deep.equal({ at: 'master', to: '192.168.10.210' });
    expect(r.hops.map((h) => h.kind)).to.deep.equal(['route', 'neighbour', 'veth', 'bridge', 'route', 'nat', 'neighbour', 'wire', 'deliver']);
    const last = r.hops.filter((h) => h.device).slice(-2);
    expect(last.map((h) => `${h.device} ${h.src}`)).to.deep.equal(['eth0 192.168.10.210', 'eth0 192.168.10.210']);
    for (const h of last) expect(h.packets, `${h.at} ${h.device}`).to.be.at.least(3);
    expect(r.capture?.allSeen, formatTrace(r).join('\n')).to.equal(true);
  });
});
