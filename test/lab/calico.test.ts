// The Calico labs end to end on the real kernel: BGP (with BIRD stopped and
// started again on one node), VXLAN, and IPIP, which this kernel cannot run and
// must skip cleanly, naming the missing module.
import { expect } from 'chai';
import { join } from 'node:path';
import { run } from '../../src/net/exec.js';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { readState } from '../../src/lab/state.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { missingKernelFeatures } from '../../src/runner/preflight.js';
import { alive, failures, leftovers } from '../helpers/lab.js';

/** PIDs of everything an instance starts, collected while it runs (the state file is gone afterwards). */
function watchPids(instance: string): { pids: Set<number>; stop: () => void } {
  const pids = new Set<number>();
  const timer = setInterval(() => readState(instance)?.processes.forEach((p) => pids.add(p.pid)), 20);
  return { pids, stop: () => clearInterval(timer) };
}

describe('lab: calico-bgp, calico-bgp-rr, calico-vxlan, calico-ipip', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('calico-bgp: every step passes, BIRD recovers after a restart (time recorded), a pod recreated under its own name answers, nothing is left behind', async () => {
    const seen = watchPids('calico-bgp');
    const r = await runLab('calico-bgp', {}, new QuietReporter()).finally(seen.stop);
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.length).to.be.greaterThan(20);
    const recovery = r.steps.find((s) => s.metrics?.['bgp-recovery'] !== undefined);
    expect(recovery, 'the recovery step recorded its time').to.not.equal(undefined);
    expect(recovery!.metrics!['bgp-recovery']).to.be.a('number').and.greaterThan(0);
    expect(r.steps.some((s) => s.command === 'stop bird' && s.ok)).to.equal(true);
    expect(r.steps.some((s) => s.command === 'recreate pod nginx-2' && s.ok), 'nginx-2 came back under its own name').to.equal(true);
    expect(leftovers('calico-bgp')).to.deep.equal([]);
    expect(seen.pids.size).to.be.greaterThan(4); // etcd, calico-node ×2, bird ×2 (+ the restarted one)
    for (const pid of seen.pids) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
  });

  it('calico-bgp-rr: one session per client to the reflector, one per client on it, every block everywhere, pods reach each other, routes go with the reflector and come back; nothing is left behind', async () => {
    const r = await runLab('calico-bgp-rr', {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.length).to.equal(16);
    expect(r.steps.some((s) => s.command === 'stop bird' && s.ok), 'the clients lost the routes with the reflector').to.equal(true);
    expect(leftovers('calico-bgp-rr')).to.deep.equal([]);
  });

  it('calico-vxlan: every step passes and nothing is left behind', async () => {
    const r = await runLab('calico-vxlan', {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.length).to.be.greaterThan(10);
    expect(leftovers('calico-vxlan')).to.deep.equal([]);
  });

  it('calico-ipip: skipped where the kernel lacks ipip, naming it; `cnilab run` exits 0', async function () {
    if ((await missingKernelFeatures(['ipip'])).length === 0) {
      // A kernel with ipip runs the lab for real.
      const r = await runLab('calico-ipip', {}, new QuietReporter());
      expect(r.ok, failures(r)).to.equal(true);
      expect(leftovers('calico-ipip')).to.deep.equal([]);
      return;
    }
    const r = await runLab('calico-ipip', {}, new QuietReporter());
    expect(r.skipped).to.equal('skipped: this kernel lacks ipip, which lab calico-ipip needs');
    expect(r.error).to.equal(undefined);
    expect(r.steps).to.deep.equal([]);
    expect(leftovers('calico-ipip')).to.deep.equal([]);

    const cli = await run([process.execPath, join(ROOT, 'dist/cli.js'), 'run', 'calico-ipip', '--name', 'calico-ipip-cli'], { allowFailure: true });
    expect(cli.exitCode, cli.stderr).to.equal(0);
    expect(cli.stdout).to.match(/calico-ipip: skipped: this kernel lacks ipip/);
    expect(leftovers('calico-ipip-cli')).to.deep.equal([]);
  });
});
