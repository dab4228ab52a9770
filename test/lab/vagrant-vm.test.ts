// The vagrant backend with VMs that really boot: vagrant-libvirt on a libvirtd
// cnilab starts in the lab's namespace, the box it builds with debootstrap
// (cached), KVM where it works, software emulation where it does not. Two VMs
// run flannel-vxlan end to end over SSH; a runner killed while its VMs boot
// leaves nothing that clean does not remove (libvirtd, its qemu processes, its
// domains, volumes and networks); a VM that does not come up in time is named
// with its console's last lines.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { LabInstance, runLab } from '../../src/runner/runner.js';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { readState } from '../../src/lab/state.js';
import { isRunning } from '../../src/lab/processes.js';
import { underlayNetns } from '../../src/topologies/netns.js';
import { vmPreflight } from '../../src/topologies/vm.js';
import { libvirtMissing, libvirtPaths, libvirtQemuPids } from '../../src/topologies/vm-libvirt.js';
import { ensureBox, type Box } from '../../src/topologies/vm-box.js';
import { failures, leftovers } from '../helpers/lab.js';
import { Terminal } from '../helpers/terminal.js';

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa(process.execPath, [join(ROOT, 'dist/cli.js'), ...args], { reject: false, env: { NO_COLOR: '1' } });
  return { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes of an instance still running. */
function alive(pids: number[]): number[] {
  return pids.filter((p) => isRunning(p));
}

describe('vagrant backend: VMs booted by vagrant-libvirt on a libvirtd of the lab', function () {
  this.timeout(20 * 60_000);
  let box: Box;

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
    const missing = await libvirtMissing();
    if (missing.length) return skip(`vagrant-libvirt needs ${missing.join(', ')}`);
    // Built once per machine (minutes), reused after.
    box = await ensureBox((m) => console.log(`      ${m}`));
  });

  it('flannel-vxlan on two VMs: every lesson step passes; status, diagram, trace --capture, exec, shell and bench work on them as on hosts; down leaves no libvirtd, qemu, namespace or file', async () => {
    const instance = 'vmx';
    const t0 = Date.now();
    const inst = LabInstance.open('flannel-vxlan', { name: instance, backend: 'vagrant' }, new QuietReporter());
    const term = new Terminal('vm-shell');
    const results = mkdtempSync('/tmp/cnilab-vm-bench-');
    let pids: number[] = [];
    let boxMtime = 0;
    try {
      await inst.up({ install: false });
      const vm = readState(instance)?.vm;
      expect(vm?.driver).to.equal('libvirt');
      pids = [vm!.libvirtd!.pid, ...libvirtQemuPids(instance)];
      expect(pids).to.have.length(3);
      // The box's image stays in its shared pool, untouched; the lab's pool holds only the VMs' overlays.
      expect(readdirSync(join(libvirtPaths(instance).dir, 'lib', 'images')).sort()).to.deep.equal([`${instance}-master.img`, `${instance}-worker.img`]);
      const [shared] = readdirSync(join(box.dir, 'pool'));
      boxMtime = statSync(join(box.dir, 'pool', shared)).mtimeMs;
      // vagrant ssh-config, relayed into the lab's namespace.
      expect(readFileSync(join(libvirtPaths(instance).dir, '..', 'vm', 'ssh-config'), 'utf8')).to.match(/Host master\n {2}HostName 100\.127\.0\.\d+\n[^]*ProxyCommand nsenter/);
      const steps = await inst.steps();
      console.log(`      flannel-vxlan on VMs: up and ${steps.length} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      expect(steps.filter((s) => !s.ok).map((s) => s.name)).to.deep.equal([]);
      expect(steps.length).to.be.greaterThan(10);
      const t1 = Date.now();

      // The VMs are driven as hosts: an ssh config and an inventory of their own, recorded like a hosts lab's.
      expect(readState(instance)?.hosts?.nodes.master).to.include({ host: 'master', interface: 'eth0' });

      const status = await cli(['status', instance, '--json']);
      expect(status.code, status.stderr).to.equal(0);
      expect(JSON.parse(status.stdout)).to.include({ healthy: true, backend: 'vagrant' });

      // Read from the VMs' kernels: their own eth0 with the lesson's addresses, the datapath's devices.
      const diagram = await cli(['diagram', instance, '--json']);
      expect(diagram.code, diagram.stderr).to.equal(0);
      const model = JSON.parse(diagram.stdout) as { namespaces: { kind: string; name: string; links: { name: string; kind: string; addresses: string[] }[] }[] };
      expect(model.namespaces.filter((n) => n.kind === 'node').map((n) => n.name)).to.deep.equal(['master', 'worker']);
      expect(model.namespaces.filter((n) => n.kind === 'pod')).to.have.length(3);
      const master = model.namespaces.find((n) => n.name === 'master')!;
      expect(master.links.map((l) => `${l.name}:${l.kind}`)).to.include.members(['cni0:bridge', 'flannel.1:vxlan']);
      expect(master.links.find((l) => l.name === 'eth0')?.addresses).to.include('192.168.10.210/24');

      const trace = await cli(['trace', '--lab', instance, 'nginx-0', 'nginx-1', '--capture', '--json']);
      expect(trace.code, trace.stdout + trace.stderr).to.equal(0);
      const t = JSON.parse(trace.stdout) as { delivered: boolean; tunnels: { via: string }[]; capture: { allSeen: boolean } };
      expect(t.delivered).to.equal(true);
      expect(t.tunnels.map((x) => x.via)).to.deep.equal(['vxlan']);
      expect(t.capture.allSeen).to.equal(true);

      // The node is the VM: its own hostname and kernel, not this machine's.
      const exec = await cli(['exec', '--lab', instance, 'worker', '--', 'sh', '-c', 'hostname; uname -r']);
      expect(exec.code, exec.stderr).to.equal(0);
      expect(exec.stdout.split('\n')[0]).to.equal('worker');
      expect(exec.stdout.split('\n')[1]).to.not.equal(release());

      // A shell in a pod on a VM, in a real terminal.
      await term.start(`node dist/cli.js shell --lab ${instance} nginx-1; echo SHELL-EXIT $?; sleep 600`);
      await term.waitFor(/\[vmx pod nginx-1@worker\]/, 'the shell prompt');
      await term.keys('hostname; ip -4 -o addr show eth0', 'Enter');
      await term.waitFor(/eth0\s+inet 10\.10\.1\.\d+\/24/, "the pod's address");
      await term.keys('exit', 'Enter');
      await term.waitFor(/SHELL-EXIT 0/, 'the shell to end');

      // Measured in place (the lab stays up): pinned only to CPUs the one-CPU VMs have.
      const bench = await cli(['bench', 'flannel-vxlan', '--name', instance, '--tests', 'tcp,ping', '--repeat', '2', '--min-repeat', '2', '--results-dir', results, '--json']);
      expect(bench.code, bench.stdout + bench.stderr).to.equal(0);
      const summary = JSON.parse(bench.stdout) as { labs: { status: string; file?: string }[] };
      expect(summary.labs.map((o) => o.status)).to.deep.equal(['ok']);
      const result = JSON.parse(readFileSync(summary.labs[0].file!, 'utf8')) as { backend: string; pairs: { name: string }[] };
      expect(result.backend).to.equal('vagrant');
      expect(result.pairs.map((p) => p.name)).to.include.members(['underlay', 'cross-node']);
      expect(readState(instance)?.status).to.equal('up');
      console.log(`      status, diagram, trace --capture, exec, shell, bench on the VMs: ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    } finally {
      await term.stop();
      await inst.down();
      rmSync(results, { recursive: true, force: true });
    }
    expect(alive(pids)).to.deep.equal([]);
    expect(leftovers(instance)).to.deep.equal([]);
    expect(statSync(join(box.dir, 'pool', readdirSync(join(box.dir, 'pool'))[0])).mtimeMs, 'the shared box image is never written').to.equal(boxMtime);
  });

  it('a runner killed with SIGKILL while its VMs boot: clean stops libvirtd and both qemu processes and removes the namespace and files', async () => {
    const instance = 'vmk';
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'up', 'flannel-vxlan', '--backend', 'vagrant', '--name', instance, '--no-install', '-q'], {
      stdio: 'ignore',
      env: process.env,
    });
    // libvirt's own pid files name the qemu processes it started.
    let qemus: number[] = [];
    for (let waited = 0; waited < 400_000 && qemus.length < 2; waited += 500) {
      await sleep(500);
      qemus = libvirtQemuPids(instance);
    }
    expect(qemus, 'both VMs started').to.have.length(2);
    const libvirtd = readState(instance)!.vm!.libvirtd!.pid;
    await sleep(3000); // well into the boot
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(alive([libvirtd, ...qemus]), 'libvirtd and the VMs outlive their runner').to.have.length(3);
    expect(existsSync(`/run/netns/${underlayNetns(instance)}`)).to.equal(true);

    const c = await execa(process.execPath, [join(ROOT, 'dist/cli.js'), 'clean'], { reject: false, all: true });
    expect(c.exitCode, c.all).to.equal(0);
    expect(alive([libvirtd, ...qemus])).to.deep.equal([]);
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

  // Every other lab on VMs, opt in (3 to 7 minutes each under emulation): CNILAB_VM_LABS=all, or a comma list.
  const wanted = (process.env.CNILAB_VM_LABS ?? '').split(',').filter(Boolean);
  for (const lab of listLabFiles().filter((l) => l !== 'flannel-vxlan')) {
    const on = wanted.includes('all') || wanted.includes(lab);
    (on ? it : it.skip)(`${lab} on VMs: every lesson step passes and nothing is left${on ? '' : ' (skipped: 3-7 min per lab under emulation; CNILAB_VM_LABS=all or a comma list runs it)'}`, async () => {
      const instance = `vm-${lab}`;
      const r = await runLab(lab, { name: instance, backend: 'vagrant', install: false }, new QuietReporter());
      // VMs build every topology, the IPv6 underlay of the -dual labs included: none is refused.
      expect(r.skipped).to.equal(undefined);
      expect(r.ok, failures(r) + (r.error ?? '')).to.equal(true);
      expect(leftovers(instance)).to.deep.equal([]);
    });
  }
});
