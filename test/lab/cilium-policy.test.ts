// The cilium-policy lab end to end on the real kernel: identities in the
// ipcache, default deny in BPF (curl times out, the drops map counts it per
// reason), one peer on one port, egress to an ipBlock with an except, and back
// to no policy, with nothing left behind.
import { expect } from 'chai';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';

describe('lab: cilium-policy', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('every step passes: identities, deny in BPF, one peer on one port, egress to an ipBlock, drops counted per reason; nothing left behind', async () => {
    const r = await runLab('cilium-policy', {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.find((s) => s.name.startsWith('the drops map counted'))?.stdout).to.match(/"reason": 133/);
    expect(leftovers('cilium-policy')).to.deep.equal([]);
  });
});
