// The flannel-udp lab on the real kernel: every lesson step passes through the
// real runner, nothing is left behind, and the user-space daemon stops cleanly
// on SIGTERM (its threads finish, flannel0 goes away with its file descriptor).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';

// Every test file runs in one mocha process with one state dir and prefix: a
// file must not change them, or labs it spawns would be recorded where the
// other files (and clean) do not look.
const { runLab, LabInstance } = await import('../../src/runner/runner.js');
const { QuietReporter } = await import('../../src/runner/reporter.js');
const { readState } = await import('../../src/lab/state.js');
const { requireBuilt } = await import('../../src/lab/paths.js');
const { alive, failures, leftovers } = await import('../helpers/lab.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('lab: flannel-udp', function () {
  this.timeout(60_000);
  before(() => requireBuilt());

  it('every lesson step passes, and no namespace, directory or process is left', async () => {
    const instance = 'udp-steps';
    const seen = new Set<number>();
    let running = true;
    // The state file is gone after teardown: note every PID the lab records while it runs.
    const watch = (async () => {
      while (running) {
        for (const p of readState(instance)?.processes ?? []) seen.add(p.pid);
        await sleep(20);
      }
    })();
    const r = await runLab('flannel-udp', { name: instance }, new QuietReporter()).finally(() => (running = false));
    await watch;
    expect(r.skipped, 'this kernel has TUN devices').to.equal(undefined);
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.map((s) => s.name)).to.include.members([
      'flannel0 is a TUN device (layer 3, no MAC address) with MTU 1472 (1500 minus IP and UDP headers)',
      'the flanneld daemon listens on UDP 8285 on the node\'s underlay address',
    ]);
    expect(seen.size, 'etcd, two flanneld, pods and captures were recorded').to.be.greaterThan(5);
    expect(leftovers(instance)).to.deep.equal([]);
    for (const pid of seen) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
  });

  it('flanneld stops on SIGTERM by itself: threads joined, flannel0 removed, a summary logged', async () => {
    const inst = LabInstance.open('flannel-udp', { name: 'udp-sigterm' }, new QuietReporter());
    try {
      await inst.up();
      const [a, b] = [inst.pods.list().find((p) => p.node === 'master')!, inst.pods.list().find((p) => p.node === 'worker')!];
      const ping = await inst.backend.podExec(a.node, a.name, ['ping', '-c', '3', '-i', '0.2', '-W', '2', b.ip!], { allowFailure: true });
      expect(ping.stdout).to.match(/3 received/);

      const agent = inst.state.state.processes.find((p) => p.name === 'flanneld' && p.node === 'master')!;
      const log = inst.backend.nodePath('master', '/var/log/flanneld.log');
      await inst.backend.stop(agent);
      expect(alive(agent.pid)).to.equal(false);
      // The summary is written only after both threads have finished and the fds are closed.
      expect(readFileSync(log, 'utf8')).to.match(/stopped: encap: [1-9]\d* packets .*; decap: [1-9]\d* packets/);
      const links = await inst.backend.exec('master', ['ip', '-o', 'link', 'show']);
      expect(links.stdout).to.not.match(/flannel0/);
    } finally {
      await inst.down();
    }
    expect(leftovers('udp-sigterm')).to.deep.equal([]);
  });
});
