// The vagrant backend's VMs, from the box built locally (vm-box.ts), in a
// network namespace of the lab's own that holds the underlay bridge (the
// lessons' addresses on the VMs' eth0) and a management network that only SSH
// uses; nothing touches the root namespace. vagrant-libvirt boots them on the
// lab's own libvirtd (vm-libvirt.ts); where it is missing, cnilab starts one
// qemu per VM itself, by PID, on taps of its own. KVM where it works, else
// software emulation, said so.
// Once booted, the VMs are hosts: an ssh config and an inventory for them are
// written, and the hosts backend drives them like any machine over SSH.
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync, closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { inNetns, netnsPath, run, startDetached } from '../net/exec.js';
import { Ip } from '../net/ip.js';
import { addNetns, deleteNetns, netnsInode } from '../net/netns.js';
import { isRunning, pidsInNetns, stopPid, stopRecorded } from '../lab/processes.js';
import { labDir, processStartTime, readState, type StateFile } from '../lab/state.js';
import type { Topology } from './backend.js';
import { CACHE_DIR } from './docker-image.js';
import { shQuote } from './node-commands.js';
import { UNDERLAY_BRIDGE, underlayNetns } from './netns.js';
import { HostsBackend, hostSsh } from './hosts.js';
import { sshArgv, sshConfigHosts, sshExitArgv, type SshTarget } from './ssh.js';
import { stretchDeadlines } from '../util/wait.js';
import { BUSYBOX, ensureBox, type Box } from './vm-box.js';
import { ensureVagrantBox, libvirtMissing, shareBoxVolume, libvirtVagrantfile, startLibvirtd, stopLibvirt, VAGRANT_HOME } from './vm-libvirt.js';

export const QEMU = 'qemu-system-x86_64';
const MGMT_BRIDGE = 'mgmt0';
/** The management network, only inside the lab's namespace: the host end and one address per VM. */
const MGMT_PREFIX = '100.127.0';
const BOX_SPACE_GB = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Accel {
  accel: 'kvm' | 'tcg';
  /** Why not KVM, when not. */
  reason?: string;
}

export function vmPaths(lab: string) {
  const dir = join(labDir(lab), 'vm');
  return { dir, key: join(dir, 'id_ed25519'), sshConfig: join(dir, 'ssh-config'), inventory: join(dir, 'inventory.yaml') };
}

/** A VM over SSH as the hosts backend reaches it (the same connection sockets): root with the lab's key, no sudo. */
function sshTarget(lab: string, node: string): SshTarget {
  return hostSsh(lab, vmPaths(lab).sshConfig, { host: node, sudo: false });
}

export const vmDisk = (lab: string, node: string) => join(vmPaths(lab).dir, `${node}.qcow2`);
export const vmConsole = (lab: string, node: string) => join(vmPaths(lab).dir, `${node}.console`);
const tapName = (kind: 'u' | 'm', i: number, node: string) => `${kind}${i}-${node}`.slice(0, 15);
export const mgmtAddress = (i: number) => `${MGMT_PREFIX}.${i + 2}`;
export const mac = (i: number, nic: number) => `52:54:00:00:${(i + 1).toString(16).padStart(2, '0')}:0${nic}`;

export interface VmSpec {
  lab: string;
  node: string;
  index: number;
  address: string;
  prefix: number;
  /** The node's IPv6 underlay address and prefix, on a dual-stack underlay. */
  addressV6?: string;
  prefixV6?: number;
  box: Box;
  accel: Accel['accel'];
  publicKey: string;
  memoryMb: number;
}

/**
 * The kernel command line: what the box's setup script (scripts/vm-guest-init.sh)
 * reads. On libvirt the management NIC asks libvirt's DHCP for its address
 * (vagrant-libvirt finds a VM by its lease): systemd turns `ip=` into a
 * networkd config, and both units are pulled in only here.
 */
export function kernelCmdline(s: VmSpec, mgmt: 'static' | 'dhcp' = 'static'): string {
  const [type, blob] = s.publicKey.trim().split(/\s+/);
  return [
    'root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1',
    // As on a Kubernetes node: bridged pod traffic passes iptables, so kube-proxy's
    // replies from a backend on the client's own bridge are translated back.
    'modules-load=br_netfilter',
    `cnilab.hostname=${s.node}`,
    `cnilab.nic=${mac(s.index, 1)},eth0,${s.address}/${s.prefix}${s.addressV6 ? `,${s.addressV6}/${s.prefixV6}` : ''}`,
    ...(mgmt === 'static'
      ? [`cnilab.nic=${mac(s.index, 2)},mgmt0,${mgmtAddress(s.index)}/24`]
      : [`cnilab.nic=${mac(s.index, 2)},mgmt0`, 'ip=mgmt0:dhcp', 'systemd.wants=systemd-network-generator.service', 'systemd.wants=systemd-networkd.service']),
    `cnilab.key=${type}:${blob}`,
    // Last, so it wins over what comes before: kernel options for debugging, or a setting to override.
    ...(process.env.CNILAB_VM_APPEND ? [process.env.CNILAB_VM_APPEND] : []),
  ].join(' ');
}

/** The qemu command line of one VM: direct kernel boot, virtio disk and NICs (taps made beforehand), serial console to a file. */
export function qemuArgv(s: VmSpec): string[] {
  const argv = [
    QEMU, '-name', `${s.lab}-${s.node}`,
    '-accel', s.accel, ...(s.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(s.memoryMb), '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', s.box.kernel, '-initrd', s.box.initrd, '-append', kernelCmdline(s),
    '-drive', `file=${vmDisk(s.lab, s.node)},if=virtio,format=qcow2`,
    '-device', 'virtio-rng-pci',
    '-netdev', `tap,id=u,ifname=${tapName('u', s.index, s.node)},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=u,mac=${mac(s.index, 1)}`,
    '-netdev', `tap,id=m,ifname=${tapName('m', s.index, s.node)},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=m,mac=${mac(s.index, 2)}`,
    '-serial', `file:${vmConsole(s.lab, s.node)}`,
  ];
  return argv;
}

/**
 * Reaches a VM's management address from inside the lab's namespace, the only
 * place that network exists: ssh's ProxyCommand, so every ssh of the lab's
 * (the hosts backend's, a user's `ssh -F`) gets there with no wrapper.
 */
function proxyCommand(lab: string): string {
  const relay = 'const s=require("net").connect(+process.argv[2],process.argv[1]);process.stdin.pipe(s).pipe(process.stdout);s.on("error",()=>process.exit(1));s.on("close",()=>process.exit(0))';
  // Its stderr away from ssh's: the relay outlives the ssh that starts the shared connection, whose caller waits for that stream to close.
  return `${inNetns(underlayNetns(lab), process.execPath, ['-e', relay, '%h', '%p']).map(shQuote).join(' ')} 2>/dev/null`;
}

/** The SSH configuration of a lab's VMs (what `vagrant ssh-config` prints for Vagrant's): root with the lab's own key, over the management network. */
export function sshConfigText(lab: string, nodes: string[], key: string): string {
  return nodes
    .map((n, i) =>
      [
        `Host ${n}`,
        `  HostName ${mgmtAddress(i)}`,
        '  User root',
        `  IdentityFile ${key}`,
        '  IdentitiesOnly yes',
        '  StrictHostKeyChecking no',
        '  UserKnownHostsFile /dev/null',
        '  LogLevel ERROR',
        '  ConnectTimeout 10',
        '  ServerAliveInterval 15',
        `  ProxyCommand ${proxyCommand(lab)}`,
      ].join('\n'),
    )
    .join('\n\n') + '\n';
}

/** `vagrant ssh-config`'s output with what the lab's ssh needs: the relay into the lab's namespace, timeouts. */
export function withProxyCommand(lab: string, vagrantSshConfig: string): string {
  return vagrantSshConfig
    .trim()
    .split(/\n(?=Host )/)
    .map((block) => [block.trimEnd(), '  ConnectTimeout 10', '  ServerAliveInterval 15', `  ProxyCommand ${proxyCommand(lab)}`].join('\n'))
    .join('\n\n') + '\n';
}

/** The last lines of a VM's serial console, for errors. */
export function consoleTail(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, 'utf8').replace(/\r/g, '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
    return text.trimEnd().split('\n').slice(-lines).map((l) => `  | ${l}`).join('\n');
  } catch {
    return '  (no console output)';
  }
}

/**
 * KVM or software emulation: CNILAB_VM_ACCEL forces one; otherwise a test
 * guest (the box's kernel with no root, which panics at once) must print its
 * banner under KVM within 20 s. Where /dev/kvm is there but unusable for
 * guests, qemu fails ("failed to set MSR") or the guest hangs: both mean emulation.
 */
export async function chooseAccel(box: Box, scratch: string): Promise<Accel> {
  const forced = process.env.CNILAB_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: forced === 'tcg' ? 'CNILAB_VM_ACCEL=tcg' : undefined };
  if (!existsSync('/dev/kvm')) return { accel: 'tcg', reason: 'no /dev/kvm' };
  // The answer holds until the host reboots: probe once per boot.
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cache = join(CACHE_DIR, 'kvm-probe.json');
  try {
    const saved = JSON.parse(readFileSync(cache, 'utf8')) as Accel & { bootId: string };
    if (saved.bootId === bootId) return { accel: saved.accel, reason: saved.reason };
  } catch {
    /* not probed yet on this boot */
  }
  const a = await probeKvm(box, scratch);
  writeFileSync(cache, JSON.stringify({ ...a, bootId }) + '\n');
  return a;
}

async function probeKvm(box: Box, scratch: string): Promise<Accel> {
  const serial = join(scratch, 'kvm-probe.console');
  const r = await execa(
    QEMU,
    ['-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-kernel', box.kernel, '-append', 'console=ttyS0 panic=-1', '-serial', `file:${serial}`],
    { reject: false, timeout: 20_000, all: true },
  );
  const banner = existsSync(serial) && readFileSync(serial, 'utf8').includes('Linux version');
  rmSync(serial, { force: true });
  if (banner) return { accel: 'kvm' };
  const said = (r.all ?? '').trim().split('\n').filter((l) => !/module ui-ui/.test(l)).pop();
  return { accel: 'tcg', reason: r.timedOut ? 'a test guest printed nothing under KVM in 20 s' : said || `qemu exited ${r.exitCode} under KVM` };
}

async function hasCommand(cmd: string): Promise<boolean> {
  return (await run(['sh', '-c', `command -v ${cmd}`], { allowFailure: true })).exitCode === 0;
}

/** Everything the VMs need on the host, named by its Debian package. */
export async function vmPreflight(): Promise<void> {
  const need: [string, string][] = [
    [QEMU, 'qemu-system-x86'],
    ['qemu-img', 'qemu-utils'],
    ['mke2fs', 'e2fsprogs'],
    ['ssh', 'openssh-client'],
    ['ssh-keygen', 'openssh-client'],
    ['debootstrap', 'debootstrap'],
  ];
  const missing: string[] = [];
  for (const [cmd, pkg] of need) if (!(await hasCommand(cmd))) missing.push(`${cmd} (Debian package ${pkg})`);
  if (!existsSync(BUSYBOX)) missing.push(`${BUSYBOX} (Debian package busybox-static)`);
  if (missing.length) throw new Error(`the vagrant backend's VMs need qemu and its tools; missing: ${missing.join(', ')}. scripts/setup.sh installs them`);
  if (!existsSync('/dev/net/tun')) throw new Error('the VMs need /dev/net/tun for their tap NICs, and it is missing');
}

function freeGb(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / 2 ** 30;
}

/** Deadlines stretch this much under software emulation: agents start 5-10x slower, more on a busy machine. */
const TCG_STRETCH = 30;

/**
 * The inventory the hosts backend reads for a lab's VMs: each node the Host of
 * its VM in the lab's ssh config, its underlay on eth0. Written before the VMs
 * exist: the config names where they will be.
 */
function writeInventory(lab: string, nodes: string[]): string {
  const p = vmPaths(lab);
  mkdirSync(hostSsh(lab, p.sshConfig, { host: '' }).controlDir, { recursive: true });
  mkdirSync(p.dir, { recursive: true });
  writeFileSync(p.sshConfig, sshConfigText(lab, nodes, p.key));
  writeFileSync(p.inventory, JSON.stringify({ sshConfig: p.sshConfig, nodes: Object.fromEntries(nodes.map((n) => [n, { host: n, interface: 'eth0' }])) }, null, 2) + '\n');
  return p.inventory;
}

/**
 * The vagrant backend's VMs: machines that cnilab boots, then drives exactly
 * as the hosts backend drives real ones, fed by the ssh config written for
 * them. Only booting and destroying them is of this file.
 */
export class QemuVmBackend extends HostsBackend {
  override readonly kind = 'vagrant';
  /** The underlay is the lab's own bridge in the lab's namespace, not the machines' network: pods may take addresses on it (macvlan). */
  override readonly foreignUnderlay = false;

  constructor(topo: Topology, state: StateFile) {
    super(topo, state, state.state.hosts ? undefined : writeInventory(topo.lab, topo.nodes.map((n) => n.name)));
    // Later commands (status, bench) on a lab under emulation wait as long as its start did.
    if (state.state.vm?.accel === 'tcg') stretchDeadlines(TCG_STRETCH);
  }

  private get netns(): string {
    return underlayNetns(this.topo.lab);
  }

  private log(msg: string): void {
    process.stderr.write(`${msg}\n`);
  }

  async up(): Promise<void> {
    try {
      await this.boot();
    } catch (e) {
      await this.down();
      throw e;
    }
    // From here the VMs are hosts; the hosts backend removes its work itself when this fails.
    try {
      await super.up();
    } catch (e) {
      await this.down();
      throw e;
    }
  }

  /** Boot every VM and wait until each answers over SSH. */
  private async boot(): Promise<void> {
    const { lab, nodes, underlay, underlayV6 } = this.topo;
    const p = vmPaths(lab);
    this.state.update((s) => (s.vm = { qemu: [] }));
    await vmPreflight();
    // vagrant-libvirt when it is there; else cnilab's own qemu processes, said so.
    const forced = process.env.CNILAB_VAGRANT_DRIVER === 'qemu';
    const missing = forced ? [] : await libvirtMissing();
    const driver = forced || missing.length ? 'qemu' : 'libvirt';
    if (missing.length) this.log(`vagrant-libvirt not usable here, missing ${missing.join(', ')}: booting the VMs with qemu directly`);
    this.state.update((s) => (s.vm!.driver = driver));
    const box = await this.box();
    const accel = await chooseAccel(box, p.dir);
    if (accel.accel === 'tcg') this.log(`KVM unusable here: ${accel.reason}; using software emulation`);
    this.state.update((s) => (s.vm!.accel = accel.accel));
    if (accel.accel === 'tcg') stretchDeadlines(TCG_STRETCH);

    // The lab's namespace: the underlay bridge (and for cnilab's own qemu the management bridge and a tap per NIC).
    this.state.update((s) => s.netns.push(this.netns));
    await addNetns(this.netns);
    const batch: string[][] = [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', UNDERLAY_BRIDGE, 'type', 'bridge'],
      ['link', 'set', UNDERLAY_BRIDGE, 'up'],
    ];
    if (driver === 'qemu') {
      batch.push(['link', 'add', MGMT_BRIDGE, 'type', 'bridge'], ['addr', 'add', `${MGMT_PREFIX}.1/24`, 'dev', MGMT_BRIDGE], ['link', 'set', MGMT_BRIDGE, 'up']);
      for (const [i, n] of nodes.entries()) {
        for (const [kind, bridge] of [['u', UNDERLAY_BRIDGE], ['m', MGMT_BRIDGE]] as const) {
          const tap = tapName(kind, i, n.name);
          batch.push(['tuntap', 'add', 'dev', tap, 'mode', 'tap'], ['link', 'set', tap, 'master', bridge, 'up']);
        }
      }
    }
    await new Ip(this.netns).batch(batch);

    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `cnilab-${lab}`, '-f', p.key]);
    const publicKey = readFileSync(`${p.key}.pub`, 'utf8');
    const memoryMb = Number(process.env.CNILAB_VM_MEMORY ?? 768);
    const limit = Number(process.env.CNILAB_VM_BOOT_TIMEOUT ?? (accel.accel === 'kvm' ? 180 : 600)) * 1000;
    const specs: VmSpec[] = nodes.map((n, index) => ({
      lab, node: n.name, index, address: n.address, prefix: underlay.prefix,
      ...(underlayV6 && n.addressV6 ? { addressV6: n.addressV6, prefixV6: underlayV6.prefix } : {}),
      box, accel: accel.accel, publicKey, memoryMb,
    }));
    const t0 = Date.now();
    if (driver === 'libvirt') {
      await this.vagrantUp(specs, limit);
    } else {
      for (const spec of specs) {
        await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', box.image, vmDisk(lab, spec.node)]);
        this.startQemu(spec);
      }
      await Promise.all(nodes.map((n) => this.waitForSsh(n.name, t0 + limit, limit)));
    }
    this.log(`  VMs up in ${((Date.now() - t0) / 1000).toFixed(0)} s (${driver}, ${accel.accel})`);
  }

  /**
   * The lab's libvirtd in its namespace, then `vagrant up` of the lab's
   * Vagrantfile there, then `vagrant ssh-config` as the lab's ssh config.
   */
  private async vagrantUp(specs: VmSpec[], limit: number): Promise<void> {
    const { lab } = this.topo;
    const p = vmPaths(lab);
    await startLibvirtd(lab, this.netns, 60_000, (pid) =>
      this.state.update((s) => (s.vm!.libvirtd = { pid, startTime: processStartTime(pid) ?? 0, name: 'libvirtd', node: '' })),
    );
    const box = await ensureVagrantBox(specs[0].box, (m) => this.log(m));
    await shareBoxVolume(lab, specs[0].box);
    writeFileSync(
      join(p.dir, 'Vagrantfile'),
      libvirtVagrantfile({
        lab,
        box,
        accel: specs[0].accel,
        key: p.key,
        memoryMb: specs[0].memoryMb,
        bootTimeoutS: Math.round(limit / 1000),
        underlayBridge: UNDERLAY_BRIDGE,
        mgmtNetwork: `${MGMT_PREFIX}.0/24`,
        vms: specs.map((s) => ({ node: s.node, underlayMac: mac(s.index, 1), mgmtMac: mac(s.index, 2), cmdline: kernelCmdline(s, 'dhcp'), console: vmConsole(lab, s.node) })),
      }),
    );
    const nodes = specs.map((s) => s.node);
    const t0 = Date.now();
    const up = execa(...vagrantArgv(lab, ['up', '--no-provision', ...nodes]), { reject: false, all: true, env: vagrantEnv(lab), timeout: limit + 120_000 });
    if (up.pid) {
      const pid = up.pid;
      this.state.update((s) => (s.vm!.vagrant = { pid, startTime: processStartTime(pid) ?? 0, name: 'vagrant', node: '' }));
    }
    const r = await up;
    const out = (r.all ?? '').replace(/\r/g, '').replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
    const ready = (n: string) => out.includes(`==> ${n}: Machine booted and ready!`);
    if (r.exitCode !== 0 || r.timedOut) {
      const late = nodes.filter((n) => !ready(n));
      const timedOut = r.timedOut || Date.now() - t0 >= limit || /Timed out while waiting|timeout/i.test(out);
      const said = out.split('\n').filter((l) => l.trim() && !/Progress:/.test(l)).slice(-8).map((l) => `  > ${l}`).join('\n');
      throw new Error(
        (late.length ? late : nodes)
          .map((n) =>
            timedOut
              ? `VM ${n} did not come up within ${limit / 1000} s (CNILAB_VM_BOOT_TIMEOUT); last console lines (${vmConsole(lab, n)}):\n${consoleTail(vmConsole(lab, n))}`
              : `VM ${n} did not come up: vagrant up failed; last console lines:\n${consoleTail(vmConsole(lab, n))}`,
          )
          .join('\n') + `\nvagrant up said:\n${said}`,
      );
    }
    const config = await execa(...vagrantArgv(lab, ['ssh-config', ...nodes]), { env: vagrantEnv(lab) });
    writeFileSync(p.sshConfig, withProxyCommand(lab, config.stdout));
  }

  private async box(): Promise<Box> {
    try {
      return await ensureBox((m) => this.log(m));
    } catch (e) {
      const free = freeGb(CACHE_DIR);
      if (free < BOX_SPACE_GB) throw new Error(`no space for the VM box: ${free.toFixed(1)} GB free in ${CACHE_DIR}, about ${BOX_SPACE_GB} GB needed. ${(e as Error).message}`);
      throw e;
    }
  }

  /** Start one VM's qemu inside the lab's namespace; its PID is recorded before this returns. */
  private startQemu(spec: VmSpec): void {
    const out = openSync(join(vmPaths(spec.lab).dir, `${spec.node}.qemu.log`), 'a');
    try {
      // nsenter execs qemu in place: the PID is qemu's.
      const pid = startDetached(inNetns(this.netns, QEMU, qemuArgv(spec).slice(1)), { stdout: out, stderr: out });
      const startTime = processStartTime(pid) ?? 0;
      this.state.update((s) => s.vm!.qemu.push({ pid, startTime, name: 'qemu', node: spec.node }));
    } finally {
      closeSync(out);
    }
  }

  /** Wait until the VM answers over SSH; a VM that stops or is late is named, with its console's last lines. */
  private async waitForSsh(node: string, deadline: number, limit: number): Promise<void> {
    const { lab } = this.topo;
    const rec = this.state.state.vm!.qemu.find((q) => q.node === node)!;
    for (;;) {
      if (!isRunning(rec.pid)) {
        const qlog = readFileSync(join(vmPaths(lab).dir, `${node}.qemu.log`), 'utf8').trim();
        throw new Error(`VM ${node} stopped while booting${qlog ? `: ${qlog.split('\n').filter((l) => !/module ui-ui/.test(l)).join('; ')}` : ''}\nlast console lines:\n${consoleTail(vmConsole(lab, node))}`);
      }
      const r = await run(sshArgv(sshTarget(lab, node), ['true']), { allowFailure: true });
      if (r.exitCode === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`VM ${node} did not come up within ${limit / 1000} s (CNILAB_VM_BOOT_TIMEOUT); last console lines (${vmConsole(lab, node)}):\n${consoleTail(vmConsole(lab, node))}`);
      }
      await sleep(2000);
    }
  }

  /** The VMs go, and everything on them with them: nothing to give back as on a host. */
  async down(): Promise<void> {
    stretchDeadlines(1);
    await cleanVmLab(this.topo.lab);
  }
}

/**
 * Remove a lab's VMs and everything around them: the shared SSH connections,
 * the recorded qemu processes (by PID and start time), whatever else still
 * lives in the lab's namespace, the namespace (taps and bridges go with it),
 * then the lab's directory (disks, consoles, key). Works from the state file
 * and the namespace's name, so a runner killed while VMs boot leaves nothing.
 */
export async function cleanVmLab(lab: string): Promise<{ unreachable?: string }> {
  const state = readState(lab);
  const p = vmPaths(lab);
  const ns = underlayNetns(lab);
  if (existsSync(p.sshConfig)) {
    for (const node of sshConfigHosts(readFileSync(p.sshConfig, 'utf8'))) await run(sshExitArgv(sshTarget(lab, node)), { allowFailure: true });
  }
  const vm = state?.vm;
  // A runner killed during `vagrant up` leaves it running, holding Vagrant's lock on the machines.
  if (vm?.vagrant) await stopRecorded(vm.vagrant);
  if (vm?.libvirtd && processStartTime(vm.libvirtd.pid) === vm.libvirtd.startTime && existsSync(join(p.dir, 'Vagrantfile'))) {
    await execa(...vagrantArgv(lab, ['destroy', '--force']), { reject: false, env: vagrantEnv(lab), timeout: 180_000 });
  }
  await stopLibvirt(lab, vm?.libvirtd);
  await Promise.all((vm?.qemu ?? []).map((q) => stopRecorded(q)));
  const inode = netnsInode(netnsPath(ns));
  if (inode !== undefined) await Promise.all(pidsInNetns(new Set([inode])).map((pid) => stopPid(pid)));
  await deleteNetns(ns);
  rmSync(labDir(lab), { recursive: true, force: true });
  return {};
}

/** vagrant with the lab's Vagrantfile, run inside the lab's namespace. */
function vagrantArgv(lab: string, args: string[]): [string, string[]] {
  const [cmd, ...rest] = inNetns(underlayNetns(lab), 'vagrant', args);
  return [cmd, rest];
}

function vagrantEnv(lab: string): NodeJS.ProcessEnv {
  const dir = vmPaths(lab).dir;
  return { ...process.env, VAGRANT_HOME, VAGRANT_CWD: dir, VAGRANT_DOTFILE_PATH: join(dir, '.vagrant'), VAGRANT_NO_COLOR: '1' };
}
