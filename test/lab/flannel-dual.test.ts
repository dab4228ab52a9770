// Dual-stack flannel on the real kernel: every pod gets an IPv4 and an IPv6
// address, pods reach each other across nodes over both families, and the
// Kubernetes model holds per family.
import { expect } from 'chai';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';

describe('lab: flannel dual-stack (vxlan and host-gw)', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  for (const lab of ['flannel-vxlan-dual', 'flannel-host-gw-dual']) {
    it(`${lab}: both families across nodes, the model per family, nothing left behind`, async () => {
      const r = await runLab(lab, {}, new QuietReporter());
      expect(r.ok, failures(r)).to.equal(true);
      const model = r.steps.find((s) => s.name.startsWith('the Kubernetes network model'));
      expect(model?.ok).to.equal(true);
      expect(leftovers(lab)).to.deep.equal([]);
    });
  }
});
