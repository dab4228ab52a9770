// Dual-stack Calico on the real kernel: each pod gets a /32 and a /128; BIRD
// carries the IPv6 blocks over a second session between the nodes' IPv6
// addresses (bgp), or vxlan-v6.calico carries the IPv6 pods (vxlan); pods reach
// each other across nodes over both families, and the Kubernetes model holds per family.
import { expect } from 'chai';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';

describe('lab: calico dual-stack (bgp and vxlan)', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('calico-bgp-dual: IPv6 blocks over BGP, both families across nodes, the model per family, nothing left behind', async () => {
    const lab = 'calico-bgp-dual';
    const r = await runLab(lab, {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    const model = r.steps.find((s) => s.name.startsWith('the Kubernetes network model'));
    expect(model?.ok).to.equal(true);
    expect(leftovers(lab)).to.deep.equal([]);
  });

  it('calico-vxlan-dual: IPv6 pods in vxlan-v6.calico over the IPv6 underlay, the model per family, nothing left behind', async () => {
    const lab = 'calico-vxlan-dual';
    const r = await runLab(lab, {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.find((s) => s.name.startsWith('the Kubernetes network model'))?.ok).to.equal(true);
    expect(leftovers(lab)).to.deep.equal([]);
  });
});
