// A BPF datapath (cilium-ebpf): the routing table has no route to the other
// node's pods, a tc program forwards them. The trace must say where the tables
// end, and with --capture find where the pings really went.
import { expect } from 'chai';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { traceLab } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';
import { leftovers } from '../helpers/lab.js';

describe('workshop on a BPF datapath (cilium-ebpf)', function () {
  this.timeout(120_000);
  let lab: LabInstance;

  before(async () => {
    requireBuilt();
    lab = LabInstance.open('cilium-ebpf', { name: 'ws-bpf' }, new QuietReporter());
    await lab.up();
  });

  after(async () => {
    await lab?.down();
    expect(leftovers('ws-bpf')).to.deep.equal([]);
  });

  it('stops at the BPF program, names it, and the capture finds the pings on both uplinks and in the target pod', async () => {
    const r = await traceLab(lab.backend, lab.state.state, ['master', 'worker'], 'nginx-0', 'nginx-1', { capture: true });
    const text = formatTrace(r).join('\n');
    expect(r.delivered, text).to.equal(false);
    expect(r.reachable, text).to.equal(true);
    expect(r.hops.map((h) => h.kind), text).to.deep.equal(['route', 'neighbour', 'veth', 'bpf']);
    expect(r.problem).to.match(/the BPF program \(tc ingress from_container\) forwards the packet/);
    expect(r.capture?.allSeen, text).to.equal(true);
    // Every ping shows up there (a redirect into the pod may show a packet twice, so at least 3).
    const beyond = r.capture!.beyond!.filter((b) => b.packets >= 3).map((b) => `${b.at} ${b.device}`);
    expect(beyond, text).to.include.members(['master eth0', 'worker eth0', 'pod/nginx-1 eth0']);
  });
});
