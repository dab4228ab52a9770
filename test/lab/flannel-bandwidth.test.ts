// The flannel-bandwidth lab on the real kernel: a pod annotated 100 Mbit/s is
// measured by iperf3 at 100 Mbit/s ± 10 % into it and out of it while its
// unshaped neighbour is not (the lab's own steps), CNI CHECK passes for the
// shaped pod, and DEL of that pod takes its ifb device away.
import { expect } from 'chai';

// One mocha process, one state dir and prefix for every file (see flannel-udp.test.ts).
const { LabInstance } = await import('../../src/runner/runner.js');
const { QuietReporter } = await import('../../src/runner/reporter.js');
const { requireBuilt } = await import('../../src/lab/paths.js');
const { leftovers } = await import('../helpers/lab.js');

describe('lab: flannel-bandwidth', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('shapes the annotated pod to 100 Mbit/s both ways and not its neighbour; CHECK passes; DEL removes the ifb', async () => {
    const instance = 'bw-steps';
    const inst = LabInstance.open('flannel-bandwidth', { name: instance }, new QuietReporter());
    try {
      await inst.up();
      const steps = await inst.steps();
      const failed = steps.filter((s) => !s.ok).map((s) => `${s.name}: ${s.failure}`);
      expect(failed).to.deep.equal([]);
      expect(steps).to.have.length(10);

      const shaped = inst.pods.list().find((p) => p.name === 'shaped-0')!;
      await inst.pods.cniCheck(shaped);
      const ifbs = async () => (await inst.backend.exec('master', ['ip', '-o', 'link', 'show', 'type', 'ifb'])).stdout.match(/bwp[0-9a-f]{12}/g) ?? [];
      expect(await ifbs()).to.have.length(1);
      await inst.pods.remove(shaped);
      expect(await ifbs()).to.deep.equal([]);
      expect((await inst.backend.exec('master', ['tc', 'qdisc', 'show'])).stdout).to.not.match(/tbf/);
    } finally {
      await inst.down();
    }
    expect(leftovers(instance)).to.deep.equal([]);
  });
});
