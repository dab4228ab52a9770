// The calico-policy lab end to end on the real kernel: no policy, default deny
// (curl times out, the DROP rule counts it), one peer on one port, egress to an
// ipBlock with an except, and back to no policy, with nothing left behind.
import { expect } from 'chai';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';

describe('lab: calico-policy', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('every step passes: deny, allow one peer on one port, egress to an ipBlock, the drop counted; nothing left behind', async () => {
    const r = await runLab('calico-policy', {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    const commands = r.steps.map((s) => s.command);
    expect(commands).to.include.members(['apply policy default-deny-ingress', 'apply policy web-from-client-80', 'apply policy client-egress-underlay']);
    expect(r.steps.find((s) => s.name.startsWith('the DROP rule'))?.stdout).to.match(/-c [1-9]\d* \d+ -j DROP/);
    expect(leftovers('calico-policy')).to.deep.equal([]);
  });
});
