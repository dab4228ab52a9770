// The vagrant backend's provider: Debian's vagrant and vagrant-libvirt on a
// libvirtd that cnilab starts for the lab alone. libvirtd runs inside the
// lab's network namespace (its management network, DHCP and any NAT rule stay
// there) and in a mount namespace of its own where the lab's directory is
// bind-mounted over libvirt's fixed paths (/run/libvirt, /var/lib/libvirt,
// /etc/libvirt, /var/log/libvirt): its config, domains, networks, storage pool
// and pid files are the lab's files, gone with the lab's directory. vagrant
// runs in the namespace too, with the box cnilab builds added once per box hash.
import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNetns, run, startDetached } from '../net/exec.js';
import { isRunning, stopPid, stopRecorded } from '../lab/processes.js';
import { labDir, type ProcessRecord } from '../lab/state.js';
import { CACHE_DIR } from './docker-image.js';
import type { Box } from './vm-box.js';

/** Where Vagrant keeps boxes: shared by every lab, each box added once under its hash. */
export const VAGRANT_HOME = join(CACHE_DIR, 'vagrant-home');
/** libvirt's fixed paths, each covered by a directory of the lab's in libvirtd's mount namespace. */
const LIBVIRT_DIRS: [string, string][] = [
  ['run', '/run/libvirt'],
  ['lib', '/var/lib/libvirt'],
  ['etc', '/etc/libvirt'],
  ['log', '/var/log/libvirt'],
  ['cache', '/var/cache/libvirt'],
];

export function libvirtPaths(lab: string) {
  const dir = join(labDir(lab), 'libvirt');
  return {
    dir,
    socket: join(dir, 'libvirt-sock'),
    pidFile: join(dir, 'libvirtd.pid'),
    log: join(dir, 'libvirtd.log'),
    /** libvirt's own pid files of the qemu processes it started (/run/libvirt/qemu inside). */
    qemuPids: join(dir, 'run', 'qemu'),
  };
}

export const libvirtUri = (lab: string) => `qemu+unix:///system?socket=${libvirtPaths(lab).socket}`;
export const boxName = (box: Box) => `cnilab/node-${box.hash}`;

/** The lab's libvirtd: no authentication on its private socket, qemu as root with no cgroups or confinement, consoles to files. */
function writeConfig(lab: string): void {
  const p = libvirtPaths(lab);
  const etc = join(p.dir, 'etc');
  for (const [d] of LIBVIRT_DIRS) mkdirSync(join(p.dir, d), { recursive: true });
  writeFileSync(
    join(etc, 'libvirtd.conf'),
    [`unix_sock_dir = "${p.dir}"`, 'unix_sock_rw_perms = "0700"', 'auth_unix_rw = "none"', 'auth_unix_ro = "none"', `log_outputs = "3:file:${p.log}"`, ''].join('\n'),
  );
  writeFileSync(
    join(etc, 'qemu.conf'),
    [
      'user = "root"',
      'group = "root"',
      'dynamic_ownership = 0',
      'remember_owner = 0',
      'security_driver = "none"',
      // No cgroups (the host may have no systemd to ask) and no per-VM mount namespace.
      'cgroup_controllers = [ ]',
      'namespaces = [ ]',
      // No virtlogd: a VM's output goes straight to a file.
      'stdio_handler = "file"',
      '',
    ].join('\n'),
  );
}

async function hasCommand(cmd: string): Promise<boolean> {
  return (await run(['sh', '-c', `command -v ${cmd}`], { allowFailure: true })).exitCode === 0;
}

/** What is missing for vagrant-libvirt, each named by its Debian package (empty: all there). */
export async function libvirtMissing(): Promise<string[]> {
  const need: [string, string][] = [
    ['libvirtd', 'libvirt-daemon and libvirt-daemon-driver-qemu'],
    ['virsh', 'libvirt-clients'],
    ['dnsmasq', 'dnsmasq-base'],
    ['vagrant', 'vagrant'],
    ['unshare', 'util-linux'],
  ];
  const missing: string[] = [];
  for (const [cmd, pkg] of need) if (!(await hasCommand(cmd))) missing.push(`${cmd} (Debian package ${pkg})`);
  if (!missing.some((m) => m.startsWith('vagrant '))) {
    const plugins = await run(['vagrant', 'plugin', 'list'], { allowFailure: true, env: { ...process.env, VAGRANT_HOME } });
    if (!/vagrant-libvirt/.test(plugins.stdout)) missing.push('the vagrant-libvirt plugin (Debian package vagrant-libvirt)');
  }
  // Debian's qemu driver looks up its compiled-in user as it starts, even when qemu.conf runs qemu as root.
  for (const db of ['passwd', 'group']) {
    if ((await run(['getent', db, 'libvirt-qemu'], { allowFailure: true })).exitCode !== 0) {
      missing.push(`the ${db === 'passwd' ? 'user' : 'group'} libvirt-qemu, which libvirtd's qemu driver looks up as it starts (scripts/setup.sh makes it)`);
    }
  }
  return missing;
}

/**
 * Start the lab's libvirtd inside `netns`, in a mount namespace of its own
 * over the lab's directories; returns its PID (nsenter, unshare and sh each
 * exec the next), given to `onStart` at once to be recorded; returns once it
 * answers on its socket.
 */
export async function startLibvirtd(lab: string, netns: string, timeoutMs: number, onStart: (pid: number) => void): Promise<number> {
  const p = libvirtPaths(lab);
  writeConfig(lab);
  // The mount points: libvirt's own directories (only /run/libvirt may be missing when no libvirtd ever ran).
  for (const [, target] of LIBVIRT_DIRS) mkdirSync(target, { recursive: true });
  const mounts = LIBVIRT_DIRS.map(([d, target]) => `mount --bind ${join(p.dir, d)} ${target}`).join(' && ');
  const script = `${mounts} && exec libvirtd -f /etc/libvirt/libvirtd.conf -p ${p.pidFile}`;
  const out = join(p.dir, 'libvirtd.out');
  const fd = openSync(out, 'a');
  let pid: number;
  try {
    pid = startDetached(inNetns(netns, 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]), { stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
  onStart(pid);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isRunning(pid)) throw new Error(`libvirtd for ${lab} exited at start: ${readFileSync(out, 'utf8').trim() || '(no output)'}; see ${p.log}`);
    if (existsSync(p.socket) && (await run(['virsh', '-c', libvirtUri(lab), 'version'], { allowFailure: true })).exitCode === 0) return pid;
    if (Date.now() > deadline) throw new Error(`libvirtd for ${lab} did not answer on ${p.socket} within ${timeoutMs / 1000} s; see ${p.log}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** The qemu processes the lab's libvirtd started, from libvirt's pid files. */
export function libvirtQemuPids(lab: string): number[] {
  const dir = libvirtPaths(lab).qemuPids;
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => Number(readFileSync(join(dir, f), 'utf8').trim()))
    .filter((pid) => pid > 0 && isRunning(pid) && /qemu/.test(comm(pid)));
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8');
  } catch {
    return '';
  }
}

/** Add the box to Vagrant once (as cnilab/node-<hash>): a tar of the box's directory, removed after. */
export async function ensureVagrantBox(box: Box, progress: (m: string) => void): Promise<string> {
  const name = boxName(box);
  const env = { ...process.env, VAGRANT_HOME };
  const list = await run(['vagrant', 'box', 'list', '--machine-readable'], { allowFailure: true, env });
  // Boxes whose build cnilab has pruned from its cache go from Vagrant's too.
  for (const m of list.stdout.matchAll(/,box-name,cnilab\/node-([0-9a-f]{16})$/gm)) {
    if (!existsSync(join(CACHE_DIR, `vm-box-${m[1]}`))) await run(['vagrant', 'box', 'remove', '--force', '--all', `cnilab/node-${m[1]}`], { allowFailure: true, env });
  }
  if (list.stdout.includes(`,box-name,${name}`)) return name;
  progress(`  adding the box to Vagrant as ${name} (once per box)`);
  const tar = join(CACHE_DIR, `${name.replace('/', '-')}.box.tmp-${process.pid}`);
  try {
    await run(['tar', '-C', box.dir, '-cf', tar, 'metadata.json', 'Vagrantfile', 'box.img', 'vmlinuz', 'initrd.img']);
    await run(['vagrant', 'box', 'add', '--force', '--name', name, tar], { env });
  } finally {
    rmSync(tar, { force: true });
  }
  return name;
}

/**
 * Offer the box's image to the lab's libvirtd as a volume it already has, so
 * vagrant-libvirt skips copying 770 MB into each lab's pool: a pool of its own
 * over `<box dir>/pool`, holding a hard link to Vagrant's copy of the image
 * under the volume name vagrant-libvirt looks for in every pool. Each VM's disk
 * is still a qcow2 overlay in the lab's pool; qemu opens the image read-only.
 */
export async function shareBoxVolume(lab: string, box: Box): Promise<void> {
  const vagrantName = boxName(box).replace('/', '-VAGRANTSLASH-');
  const image = join(VAGRANT_HOME, 'boxes', vagrantName, '0', 'libvirt', 'box.img');
  // vagrant-libvirt names an unversioned box's volume after the image's mtime.
  const volume = `${vagrantName}_vagrant_box_image_0_${Math.floor(statSync(image).mtimeMs / 1000)}_box.img`;
  const dir = join(box.dir, 'pool');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f !== volume) rmSync(join(dir, f), { force: true });
  if (!existsSync(join(dir, volume))) {
    try {
      linkSync(image, join(dir, volume));
    } catch {
      return; // another file system: vagrant-libvirt copies the image as before
    }
  }
  await run(['virsh', '-c', libvirtUri(lab), 'pool-create-as', 'cnilab-box', 'dir', '--target', dir]);
}

export interface LibvirtVm {
  node: string;
  /** The underlay NIC's MAC (eth0 in the VM) and the management NIC's. */
  underlayMac: string;
  mgmtMac: string;
  cmdline: string;
  console: string;
}

const rb = (s: string | number) => JSON.stringify(String(s));

/** The lab's Vagrantfile: its VMs on the lab's libvirtd, direct kernel boot of the box, the underlay bridge as their eth0. */
export function libvirtVagrantfile(o: {
  lab: string;
  box: string;
  accel: 'kvm' | 'tcg';
  key: string;
  memoryMb: number;
  bootTimeoutS: number;
  underlayBridge: string;
  mgmtNetwork: string;
  vms: LibvirtVm[];
}): string {
  const cpu = o.accel === 'kvm' ? ["    l.cpu_mode = 'host-passthrough'"] : ["    l.cpu_mode = 'custom'", "    l.cpu_model = 'qemu64'"];
  return [
    `# cnilab lab ${o.lab}: one VM per node on the lab's own libvirtd (made by cnilab; see README, Vagrant).`,
    "Vagrant.configure('2') do |config|",
    `  config.vm.box = ${rb(o.box)}`,
    '  config.vm.box_check_update = false',
    "  config.vm.synced_folder '.', '/vagrant', disabled: true",
    `  config.vm.boot_timeout = ${o.bootTimeoutS}`,
    // root with the lab's key, given to the VM on its kernel command line.
    "  config.ssh.username = 'root'",
    `  config.ssh.private_key_path = ${rb(o.key)}`,
    '  config.ssh.insert_key = false',
    '  config.vm.provider :libvirt do |l|',
    `    l.uri = ${rb(libvirtUri(o.lab))}`,
    `    l.driver = ${rb(o.accel === 'kvm' ? 'kvm' : 'qemu')}`,
    `    l.default_prefix = ${rb(`${o.lab}-`)}`,
    `    l.memory = ${o.memoryMb}`,
    '    l.cpus = 1',
    ...cpu,
    "    l.graphics_type = 'none'",
    "    l.video_type = 'none'",
    // Isolated: DHCP for SSH only, no default route, no NAT.
    "    l.management_network_name = 'cnilab-mgmt'",
    `    l.management_network_address = ${rb(o.mgmtNetwork)}`,
    "    l.management_network_mode = 'none'",
    "    l.random :model => 'random'",
    '  end',
    ...o.vms.flatMap((v) => [
      `  config.vm.define ${rb(v.node)} do |m|`,
      `    m.vm.network :public_network, dev: ${rb(o.underlayBridge)}, mode: 'bridge', type: 'bridge', mac: ${rb(v.underlayMac)}, auto_config: false`,
      '    m.vm.provider :libvirt do |l|',
      `      l.management_network_mac = ${rb(v.mgmtMac)}`,
      `      l.cmd_line = ${rb(v.cmdline)}`,
      `      l.serial :type => 'file', :source => { :path => ${rb(v.console)} }`,
      '    end',
      '  end',
    ]),
    'end',
    '',
  ].join('\n');
}

/** Stop the lab's libvirtd by its PID, then the qemu processes it started (libvirtd leaves running domains behind). */
export async function stopLibvirt(lab: string, libvirtd: ProcessRecord | undefined): Promise<void> {
  const qemus = libvirtQemuPids(lab);
  if (libvirtd) await stopRecorded(libvirtd);
  await Promise.all(qemus.map((pid) => stopPid(pid)));
}
