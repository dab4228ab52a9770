// Services on whole labs: ClusterIP, NodePort, affinity, cluster DNS and
// endpoints that follow pods, in kube-proxy's iptables mode (flannel VXLAN),
// nftables mode (Calico BGP) and ebpf mode (the cilium datapath's service
// maps); nothing is left behind.
import { expect } from 'chai';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';

describe('lab: services (kube-proxy iptables, nftables and ebpf modes, cluster DNS)', function () {
  this.timeout(180_000);
  before(() => requireBuilt());

  for (const [lab, mode] of [
    ['flannel-vxlan-services', 'iptables'],
    ['calico-bgp-services', 'nftables'],
    ['cilium-ebpf-services', 'ebpf'],
  ] as const) {
    it(`${lab} (${mode}): every service step passes and nothing is left behind`, async () => {
      const reporter = new QuietReporter();
      const r = await runLab(lab, {}, reporter);
      expect(r.ok, failures(r)).to.equal(true);
      const names = r.steps.map((s) => s.name).join('\n');
      // The steps that carry the lesson are there and ran.
      for (const must of [/spread over all three replicas/, /NodePort from the other node/, /session affinity/, /delete pod web-2/, /headless service/]) expect(names).to.match(must);
      expect(leftovers(lab)).to.deep.equal([]);
    });
  }
});
