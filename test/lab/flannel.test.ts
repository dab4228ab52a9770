// Whole labs on the real kernel: the lesson's steps pass, two labs run side by
// side, and a runner killed with SIGKILL mid-way is cleaned up completely.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { readState } from '../../src/lab/state.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { cleanAll } from '../../src/runner/clean.js';
import { alive, failures, leftovers } from '../helpers/lab.js';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `cond` holds; generous, since CI machines are shared and slow at times. */
async function waitFor(cond: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(5);
  }
  return cond();
}

describe('lab: flannel-vxlan and flannel-host-gw', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  it('flannel-vxlan: every lesson step passes (a pod recreated under its own name among them) and nothing is left behind', async () => {
    const r = await runLab('flannel-vxlan', {}, new QuietReporter());
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.length).to.be.greaterThan(10);
    expect(r.steps.some((s) => s.command === 'recreate pod nginx-1' && s.ok), 'nginx-1 came back under its own name').to.equal(true);
    expect(leftovers('flannel-vxlan')).to.deep.equal([]);
  });

  it('two different labs run at once without colliding', async () => {
    const [a, b] = await Promise.all([
      runLab('flannel-vxlan', { name: 'twin-vxlan' }, new QuietReporter()),
      runLab('flannel-host-gw', { name: 'twin-hostgw' }, new QuietReporter()),
    ]);
    expect(a.ok, failures(a)).to.equal(true);
    expect(b.ok, failures(b)).to.equal(true);
    expect([...leftovers('twin-vxlan'), ...leftovers('twin-hostgw')]).to.deep.equal([]);
  });

  it('refuses a second instance with the same name, naming the way out', async () => {
    const first = runLab('flannel-host-gw', { name: 'dup' }, new QuietReporter());
    // Wait until the first one has recorded itself, then try again under the same name.
    await waitFor(() => readState('dup') !== undefined);
    const second = await runLab('flannel-host-gw', { name: 'dup' }, new QuietReporter()).catch((e: Error) => e);
    expect(String(second)).to.match(/already up.*cnilab down dup/);
    expect((await first).ok).to.equal(true);
    expect(leftovers('dup')).to.deep.equal([]);
  });

  it('Ctrl-C during up tears the half-built lab down before exiting', async () => {
    const instance = 'interrupted';
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'up', 'flannel-host-gw', '--name', instance], { stdio: 'ignore' });
    const reached = await waitFor(() => (readState(instance)?.processes.length ?? 0) >= 2);
    expect(reached, 'the runner never started etcd and an agent').to.equal(true);
    const pids = readState(instance)!.processes.map((p) => p.pid);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    expect(code).to.equal(130);
    expect(leftovers(instance)).to.deep.equal([]);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
  });

  for (const killAt of ['network', 'pods'] as const) {
    it(`a runner killed with SIGKILL during ${killAt} leaves nothing after clean`, async () => {
      const instance = `killed-${killAt}`;
      const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'up', 'flannel-vxlan', '--name', instance, '--json'], { stdio: 'ignore' });
      // Wait for the phase: etcd + agents recorded (network), or a pod sandbox recorded (pods).
      const reached = () => {
        const s = readState(instance);
        return killAt === 'network' ? (s?.processes.length ?? 0) >= 2 : (s?.pods.length ?? 0) >= 1;
      };
      expect(await waitFor(reached), `the runner never reached the ${killAt} phase`).to.equal(true);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const pids = readState(instance)!.processes.map((p) => p.pid);
      expect(pids.length).to.be.greaterThan(0);
      expect(leftovers(instance)).to.not.deep.equal([]); // the crash really left something

      const report = await cleanAll();
      expect(report.labs).to.include(instance);
      expect(leftovers(instance)).to.deep.equal([]);
      for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
    });
  }
});
