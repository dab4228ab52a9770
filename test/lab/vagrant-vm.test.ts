// The vagrant backend with VMs that really boot: qemu started by cnilab from
// the box it builds with debootstrap (cached), KVM where it works, software
// emulation where it does not. Two VMs run flannel-vxlan end to end over SSH;
// a runner killed while its VMs boot leaves nothing that clean does not remove;
// a VM that does not come up in time is named with its console's last lines.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { LabInstance, runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { readState } from '../../src/lab/state.js';
import { isRunning } from '../../src/lab/processes.js';
import { underlayNetns } from '../../src/topologies/netns.js';
import { vmPreflight } from '../../src/topologies/vm.js';
import { ensureBox } from '../../src/topologies/vm-box.js';
import { failures, leftovers } from '../helpers/lab.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** qemu processes of an instance still running, from what it recorded. */
function qemuAlive(pids: number[]): number[] {
  return pids.filter((p) => isRunning(p));
}

describe('vagrant backend: VMs booted with qemu', function () {
  this.timeout(20 * 60_000);

  before(async function () {
    const skip = (why: string) => {
      console.log(`      skipped: ${why}`);
      this.skip();
    };
    requireBuilt();
    if (process.getuid?.() !== 0) return skip('booting VMs on tap devices needs root');
    try {
      await vmPreflight();
    } catch (e) {
      return skip((e as Error).message);
    }
    // Built once per machine (minutes), reused after.
    await ensureBox((m) => console.log(`      ${m}`));
  });

  it('flannel-vxlan on two VMs: every lesson step passes over SSH, and down leaves no qemu, namespace or file', async () => {
    const instance = 'vmx';
    const t0 = Date.now();
    const r = await runLab('flannel-vxlan', { name: instance, backend: 'vagrant', install: false }, new QuietReporter());
    console.log(`      flannel-vxlan on VMs: ${((Date.now() - t0) / 1000).toFixed(0)} s, ${r.steps.filter((s) => s.ok).length}/${r.steps.length} steps`);
    expect(r.ok, failures(r)).to.equal(true);
    expect(r.steps.length).to.be.greaterThan(10);
    expect(leftovers(instance)).to.deep.equal([]);
  });

  it('a runner killed with SIGKILL while its VMs boot: clean stops both qemu processes and removes the namespace and files', async () => {
    const instance = 'vmk';
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'up', 'flannel-vxlan', '--backend', 'vagrant', '--name', instance, '--no-install', '-q'], {
      stdio: 'ignore',
      env: process.env,
    });
    let pids: number[] = [];
    for (let waited = 0; waited < 300_000 && pids.length < 2; waited += 500) {
      await sleep(500);
      pids = (readState(instance)?.vm?.qemu ?? []).map((q) => q.pid);
    }
    expect(pids, 'both VMs started').to.have.length(2);
    await sleep(3000); // well into the boot
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(qemuAlive(pids), 'the VMs outlive their runner').to.have.length(2);
    expect(existsSync(`/run/netns/${underlayNetns(instance)}`)).to.equal(true);

    const c = await execa(process.execPath, [join(ROOT, 'dist/cli.js'), 'clean'], { reject: false, all: true });
    expect(c.exitCode, c.all).to.equal(0);
    expect(qemuAlive(pids)).to.deep.equal([]);
    expect(leftovers(instance)).to.deep.equal([]);
  });

  it('a VM not up within its time is named, with the last lines of its console, and nothing is left', async () => {
    const instance = 'vmt';
    const saved = { ...process.env };
    // The VMs boot, but with another key for root than the lab's: SSH never lets the lab in.
    process.env.CNILAB_VM_APPEND = 'cnilab.key=ssh-ed25519:AAAAC3NzaC1lZDI1NTE5AAAAIHNvbWVvbmUgZWxzZSdzIGtleSwgbm90IHRoZSBsYWJzIQ';
    process.env.CNILAB_VM_BOOT_TIMEOUT = '60';
    try {
      const inst = LabInstance.open('flannel-vxlan', { name: instance, backend: 'vagrant' }, new QuietReporter());
      const err = await inst.backend.up().then(
        () => undefined,
        (e: Error) => e,
      );
      if (!err) await inst.backend.down();
      expect(err?.message).to.match(/VM (master|worker) did not come up within 60 s/);
      expect(err?.message).to.include('last console lines');
      expect(err?.message).to.match(/\n {2}\| \S/); // at least one console line (60 s is past the kernel's first words)
    } finally {
      process.env.CNILAB_VM_APPEND = saved.CNILAB_VM_APPEND;
      process.env.CNILAB_VM_BOOT_TIMEOUT = saved.CNILAB_VM_BOOT_TIMEOUT;
      if (saved.CNILAB_VM_APPEND === undefined) delete process.env.CNILAB_VM_APPEND;
      if (saved.CNILAB_VM_BOOT_TIMEOUT === undefined) delete process.env.CNILAB_VM_BOOT_TIMEOUT;
    }
    expect(leftovers(instance)).to.deep.equal([]);
  });

});
