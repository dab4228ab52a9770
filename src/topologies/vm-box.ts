// The box the VMs boot: a Debian root filesystem from the host's own mirror
// (debootstrap, through the node image's cached build), with a kernel, systemd
// and sshd, the node's packages installed (so a VM needs no network to be
// provisioned) and the host's Node.js at the host's path (the agents' command
// lines name it). Written as an ext4 image in qcow2, with the kernel and initrd
// beside it for direct kernel boot, plus metadata.json and a Vagrantfile: the
// layout vagrant-libvirt imports. Cached under CACHE_DIR by a hash of what goes
// into it, built once per machine.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../lab/paths.js';
import { isRunning } from '../lab/processes.js';
import { buildInitramfs } from './vm-initramfs.js';
import { CACHE_DIR, ensureRootfsTar, hostAptSource, imageHash, imageRecipe, type ImageRecipe } from './docker-image.js';

/** What a VM needs beyond a container node: a kernel, an init, sshd, and sudo for Vagrant's user. */
export const VM_PACKAGES = ['linux-image-amd64', 'systemd-sysv', 'udev', 'kmod', 'openssh-server', 'sudo'];
/** Bump when the way the box is made from the rootfs changes. */
const BOX_RECIPE = 3;
/** Static, from Debian package busybox-static: the box's initramfs runs it. */
export const BUSYBOX = '/bin/busybox';
export const GUEST_INIT = join(ROOT, 'scripts', 'vm-guest-init.sh');
/** The units a node boots with; every daemon a package enabled stays off (cnilab starts its own, by PID). */
const KEEP_UNITS = ['ssh.service', 'cnilab-guest.service'];

export interface Box {
  dir: string;
  image: string;
  kernel: string;
  initrd: string;
  hash: string;
}

export function vmRecipe(suite: string): ImageRecipe {
  const r = imageRecipe(suite);
  return { ...r, packages: [...new Set([...r.packages, ...VM_PACKAGES])].sort() };
}

/** The box's hash: the rootfs it starts from, how it is made from it, the guest script and the Node.js copied in. */
export function boxHash(r: ImageRecipe, guestInit: string, node: { path: string; version: string }): string {
  return createHash('sha256')
    .update(JSON.stringify({ rootfs: imageHash(r), recipe: BOX_RECIPE, guestInit, node }))
    .digest('hex')
    .slice(0, 16);
}

const GUEST_UNIT = `[Unit]
Description=cnilab node setup from the kernel command line
DefaultDependencies=no
After=local-fs.target systemd-udev-trigger.service
Before=ssh.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/cnilab-guest
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`;

// Many commands share one connection per VM (ssh ControlMaster): allow that many sessions.
// No PAM: with no logind in the VM its session module only adds delay to every command.
const SSHD_CONFIG = 'PermitRootLogin prohibit-password\nUsePAM no\nUseDNS no\nMaxSessions 200\nMaxStartups 100\n';

/** The box's Vagrantfile: direct kernel boot, as cnilab boots it. */
export function boxVagrantfile(): string {
  return `# cnilab node box for vagrant-libvirt: direct kernel boot of the ext4 root in box.img.
Vagrant.configure('2') do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = ENV.fetch('CNILAB_LIBVIRT_DRIVER', 'kvm')
    libvirt.kernel = File.join(__dir__, 'vmlinuz')
    libvirt.initrd = File.join(__dir__, 'initrd.img')
    libvirt.cmd_line = 'root=/dev/vda rw console=ttyS0 net.ifnames=0'
  end
end
`;
}

/** Change the extracted rootfs into a node VM's root. */
function customize(root: string): void {
  const w = (path: string, text: string, mode = 0o644) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text, { mode });
  };
  w('etc/fstab', '/dev/vda / ext4 defaults,noatime 0 0\n');
  w('etc/hostname', 'node\n');
  w('etc/hosts', '127.0.0.1 localhost\n');
  // Empty: each VM makes its own machine ID at boot. A shared one gives every VM the same
  // MACs for its virtual devices (systemd derives them from it): two VTEPs with one MAC.
  w('etc/machine-id', '');
  rmSync(join(root, 'var/lib/dbus/machine-id'), { force: true });
  w('usr/local/sbin/cnilab-guest', readFileSync(GUEST_INIT, 'utf8'), 0o755);
  w('etc/systemd/system/cnilab-guest.service', GUEST_UNIT);
  w('etc/ssh/sshd_config.d/cnilab.conf', SSHD_CONFIG);
  // Vagrant's user, for `vagrant ssh` with the box: its well-known key, sudo without a password.
  const vagrantKey = '/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant.pub';
  if (existsSync(vagrantKey)) {
    w('etc/sudoers.d/vagrant', 'vagrant ALL=(ALL) NOPASSWD: ALL\n', 0o440);
    const passwd = readFileSync(join(root, 'etc/passwd'), 'utf8');
    if (!/^vagrant:/m.test(passwd)) {
      writeFileSync(join(root, 'etc/passwd'), passwd + 'vagrant:x:1000:1000:vagrant:/home/vagrant:/bin/bash\n');
      writeFileSync(join(root, 'etc/group'), readFileSync(join(root, 'etc/group'), 'utf8') + 'vagrant:x:1000:\n');
      writeFileSync(join(root, 'etc/shadow'), readFileSync(join(root, 'etc/shadow'), 'utf8') + 'vagrant:*:19000:0:99999:7:::\n');
    }
    w('home/vagrant/.ssh/authorized_keys', readFileSync(vagrantKey, 'utf8'), 0o600);
  }
  // Only sshd and our setup start at boot: no package's daemon, no timers.
  const wants = join(root, 'etc/systemd/system/multi-user.target.wants');
  mkdirSync(wants, { recursive: true });
  for (const unit of readdirSync(wants)) if (!KEEP_UNITS.includes(unit)) unlinkSync(join(wants, unit));
  for (const unit of KEEP_UNITS) {
    const src = unit === 'ssh.service' ? '/lib/systemd/system/ssh.service' : '/etc/systemd/system/cnilab-guest.service';
    rmSync(join(wants, unit), { force: true });
    symlinkSync(src, join(wants, unit));
  }
  rmSync(join(root, 'etc/systemd/system/timers.target.wants'), { recursive: true, force: true });
  // No screen: the console is the serial port (its getty comes from console=ttyS0), not tty1-6.
  rmSync(join(root, 'etc/systemd/system/getty.target.wants'), { recursive: true, force: true });
  // Node.js at the host's path.
  mkdirSync(dirname(join(root, process.execPath)), { recursive: true });
  copyFileSync(process.execPath, join(root, process.execPath));
  if (process.execPath !== '/usr/local/bin/node') {
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    rmSync(join(root, 'usr/local/bin/node'), { force: true });
    symlinkSync(process.execPath, join(root, 'usr/local/bin/node'));
  }
}

/** The newest file in the rootfs' /boot starting with `prefix`. */
function bootFile(root: string, prefix: string): string {
  const f = readdirSync(join(root, 'boot'))
    .filter((n) => n.startsWith(prefix))
    .sort()
    .pop();
  if (!f) throw new Error(`the box's root filesystem has no /boot/${prefix}*: was linux-image-amd64 installed?`);
  return join(root, 'boot', f);
}

async function must(argv: string[], what: string): Promise<void> {
  const r = await execa(argv[0], argv.slice(1), { reject: false, all: true });
  if ((r as { code?: string }).code === 'ENOENT') throw new Error(`${argv[0]} is not installed: ${what}`);
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.exitCode}):\n${(r.all ?? '').trim().split('\n').slice(-10).join('\n')}`);
}

export function boxPaths(dir: string): Omit<Box, 'hash'> {
  return { dir, image: join(dir, 'box.img'), kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') };
}

/** The cached box, built first when missing (minutes; progress goes to `progress`). */
export async function ensureBox(progress: (msg: string) => void = () => {}): Promise<Box> {
  const r = vmRecipe(hostAptSource().suite);
  const hash = boxHash(r, readFileSync(GUEST_INIT, 'utf8'), { path: process.execPath, version: process.version });
  const dir = join(CACHE_DIR, `vm-box-${hash}`);
  if (existsSync(join(dir, 'metadata.json'))) return { ...boxPaths(dir), hash };
  removeStaleBuilds();
  const t0 = Date.now();
  progress(`building the VM box ${hash} (once per machine, a few minutes; kept in ${dir})`);
  const tar = await ensureRootfsTar(r, progress, 'vm');
  const tmp = `${dir}.tmp-${process.pid}`;
  const root = join(tmp, 'root');
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    progress('  unpacking the root filesystem');
    await must(['tar', '-C', root, '--numeric-owner', '-xf', tar], 'the box is unpacked with tar');
    customize(root);
    const paths = boxPaths(tmp);
    const kernel = bootFile(root, 'vmlinuz-');
    writeFileSync(paths.initrd, buildInitramfs(root, kernel.replace(/.*\/vmlinuz-/, ''), BUSYBOX));
    copyFileSync(kernel, paths.kernel);
    // Room to spare for what a lab writes (logs go to the host's directory, not here).
    const used = Number((await execa('du', ['-sxm', root])).stdout.split(/\s/)[0]);
    const sizeMb = Math.ceil(used * 1.3) + 1024;
    progress(`  writing the ext4 root (${sizeMb} MB) and converting it to qcow2`);
    const raw = join(tmp, 'root.ext4');
    await must(['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'cnilab-root', '-d', root, raw, `${sizeMb}M`], 'Debian package e2fsprogs makes the box');
    await must(['qemu-img', 'convert', '-O', 'qcow2', raw, paths.image], 'Debian package qemu-utils makes the box');
    rmSync(raw);
    rmSync(root, { recursive: true, force: true });
    writeFileSync(join(tmp, 'metadata.json'), JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: Math.ceil(sizeMb / 1024) }) + '\n');
    writeFileSync(join(tmp, 'Vagrantfile'), boxVagrantfile());
    // Another build of the same box may have finished first: then its box is the one.
    if (!existsSync(join(dir, 'metadata.json'))) renameSync(tmp, dir);
    pruneBoxes(dir);
    progress(`  box ready in ${Math.round((Date.now() - t0) / 1000)} s`);
    return { ...boxPaths(dir), hash };
  } catch (e) {
    if (/No space left|ENOSPC/.test(String((e as Error).message) + String((e as NodeJS.ErrnoException).code))) {
      throw new Error(`no space left in ${CACHE_DIR} for the VM box (it needs about 3 GB while building): ${(e as Error).message}`);
    }
    throw e;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Half-built boxes of builds that were killed (their process is gone). */
function removeStaleBuilds(): void {
  for (const f of readdirSync(CACHE_DIR)) {
    const m = /^vm-box-[0-9a-f]{16}\.tmp-(\d+)$/.exec(f);
    if (m && !isRunning(Number(m[1]))) rmSync(join(CACHE_DIR, f), { recursive: true, force: true });
  }
}

/** Keep this box and the one before it. */
function pruneBoxes(keep: string): void {
  const old = readdirSync(CACHE_DIR)
    .filter((f) => /^vm-box-[0-9a-f]{16}$/.test(f))
    .map((f) => join(CACHE_DIR, f))
    .filter((f) => f !== keep)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const d of old.slice(1)) rmSync(d, { recursive: true, force: true });
}
