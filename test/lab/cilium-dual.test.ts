// Dual-stack in the cilium-like eBPF datapath on the real kernel: IPv6 pods
// routed natively over an IPv6 underlay and carried in the VXLAN tunnel over
// an IPv4 one, NDP answered in BPF, NetworkPolicy over IPv6, the Kubernetes
// model per family.
import { expect } from 'chai';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';

describe('lab: cilium dual-stack (native and vxlan)', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  for (const lab of ['cilium-ebpf-dual', 'cilium-vxlan-dual']) {
    it(`${lab}: both families across nodes, the IPv6 maps, the model per family, nothing left behind`, async () => {
      const r = await runLab(lab, {}, new QuietReporter());
      expect(r.ok, failures(r)).to.equal(true);
      const model = r.steps.find((s) => s.name.startsWith('the Kubernetes network model'));
      expect(model?.ok).to.equal(true);
      expect(leftovers(lab)).to.deep.equal([]);
    });
  }
});
