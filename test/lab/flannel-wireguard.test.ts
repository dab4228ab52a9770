// The flannel-wireguard lab on the real kernel: every lesson step passes (only
// UDP 51820 on the underlay, no pod address there, no NAT between pods); the
// implementation is the kernel module where `ip link add type wireguard`
// works, else wireguard-go, which then runs inside each node's namespace, is
// recorded by PID and is stopped by `clean` through that PID.
import { expect } from 'chai';
import { readFileSync, statSync } from 'node:fs';

// One mocha process, one state dir and prefix for every file (see flannel-udp.test.ts).
const { LabInstance } = await import('../../src/runner/runner.js');
const { QuietReporter } = await import('../../src/runner/reporter.js');
const { requireBuilt } = await import('../../src/lab/paths.js');
const { cleanLab } = await import('../../src/runner/clean.js');
const { netnsInode } = await import('../../src/net/netns.js');
const { wireguardImplementation } = await import('../../src/datapaths/flannel/wireguard-install.js');
const { alive, leftovers } = await import('../helpers/lab.js');

describe('lab: flannel-wireguard', function () {
  this.timeout(90_000);
  before(() => requireBuilt());

  it('encrypts pod traffic between nodes; wireguard-go (where the kernel lacks the module) runs in each node namespace and clean stops it by PID', async () => {
    const instance = 'wg-steps';
    const impl = await wireguardImplementation();
    const inst = LabInstance.open('flannel-wireguard', { name: instance }, new QuietReporter());
    let daemons: { pid: number; node: string }[] = [];
    try {
      await inst.up();
      const steps = await inst.steps();
      expect(steps.filter((s) => !s.ok).map((s) => `${s.name}: ${s.failure}`)).to.deep.equal([]);
      expect(steps).to.have.length(10);

      daemons = inst.state.state.processes.filter((p) => p.name === 'wireguard-go');
      const kinds = await Promise.all(['master', 'worker'].map(async (n) => (await inst.backend.exec(n, ['ip', '-d', '-j', 'link', 'show', 'flannel-wg'])).stdout));
      if (impl === 'kernel') {
        expect(daemons).to.deep.equal([]);
        for (const k of kinds) expect(JSON.parse(k)[0].linkinfo.info_kind).to.equal('wireguard');
      } else {
        expect(daemons.map((d) => d.node).sort()).to.deep.equal(['master', 'worker']);
        for (const d of daemons) {
          expect(readFileSync(`/proc/${d.pid}/comm`, 'utf8').trim()).to.equal('wireguard-go');
          expect(statSync(`/proc/${d.pid}/ns/net`).ino, `wireguard-go on ${d.node} lives in that node's namespace`).to.equal(netnsInode(inst.backend.netnsPath!(d.node)!));
        }
        for (const k of kinds) expect(JSON.parse(k)[0].linkinfo.info_kind).to.equal('tun');
      }
      // A key pair per node: private keys in node-private files only root can read, different public keys in the leases.
      const keys = ['master', 'worker'].map((n) => inst.backend.nodePath(n, '/run/flannel/wgkey'));
      for (const f of keys) expect(statSync(f).mode & 0o777).to.equal(0o600);
      expect(readFileSync(keys[0], 'utf8')).to.not.equal(readFileSync(keys[1], 'utf8'));
    } finally {
      // Not down(): clean must find wireguard-go from the recorded state alone.
      await cleanLab(instance);
    }
    for (const d of daemons) expect(alive(d.pid), `wireguard-go ${d.pid} stopped`).to.equal(false);
    expect(leftovers(instance)).to.deep.equal([]);
  });
});
