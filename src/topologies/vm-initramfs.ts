// A minimal initramfs for the box: busybox and the few modules that mount the
// root (virtio PCI and block, ext4), nothing else. Debian's own initramfs
// works too, but under software emulation unpacking it and its udev pass
// take over a minute of every boot; this one takes seconds.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the root needs, in the order `modules.dep` gives (dependencies first). */
export const ROOT_MODULES = ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4'];

/** Module files to load for `wanted`, dependencies first, each once (paths relative to the modules dir). */
export function moduleLoadOrder(modulesDep: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod) deps.set(mod.trim(), (rest ?? '').trim().split(/\s+/).filter(Boolean));
  }
  const byName = (name: string) => [...deps.keys()].find((k) => k.endsWith(`/${name}.ko`) || k.endsWith(`/${name.replace(/_/g, '-')}.ko`));
  const order: string[] = [];
  for (const name of wanted) {
    const mod = byName(name);
    if (!mod) throw new Error(`module ${name} is not in modules.dep`);
    // modules.dep lists every dependency, the deepest last: load them in reverse.
    for (const m of [...deps.get(mod)!].reverse().concat(mod)) if (!order.includes(m)) order.push(m);
  }
  return order;
}

export function initScript(modules: string[]): string {
  return `#!/bin/busybox sh
b=/bin/busybox
$b mkdir -p /proc /sys /dev /newroot
$b mount -t proc proc /proc
$b mount -t sysfs sysfs /sys
$b mount -t devtmpfs devtmpfs /dev
for m in ${modules.map((m) => `/lib/modules/${m}`).join(' ')}; do $b insmod "$m" || echo "initramfs: insmod $m failed"; done
i=0; while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do $b sleep 0.1; i=$((i+1)); done
$b mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; exec $b sh; }
$b umount /proc /sys
$b mount --move /dev /newroot/dev
exec $b switch_root /newroot /sbin/init
`;
}

interface Entry {
  name: string;
  mode: number;
  data: Buffer;
  /** A device node's major and minor. */
  rdev?: [number, number];
}

/** The newc cpio archive the kernel unpacks as its initramfs. */
export function cpioNewc(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0, data: Buffer.alloc(0) }]) {
    const name = Buffer.from(e.name + '\0');
    const [major, minor] = 'rdev' in e && e.rdev ? e.rdev : [0, 0];
    const fields = [ino++, e.mode, 0, 0, 1, 0, e.data.length, 0, 0, major, minor, name.length, 0];
    const header = Buffer.from('070701' + fields.map(hex).join(''));
    parts.push(header, name, pad(header.length + name.length), e.data, pad(e.data.length));
  }
  return Buffer.concat(parts);
}

/** The initramfs for a kernel whose modules are under `root`/usr/lib/modules/`kver`, with the host's static busybox. */
export function buildInitramfs(root: string, kver: string, busybox: string): Buffer {
  const modDir = join(root, 'usr/lib/modules', kver);
  const modules = moduleLoadOrder(readFileSync(join(modDir, 'modules.dep'), 'utf8'), ROOT_MODULES);
  const dir = (name: string): Entry => ({ name, mode: 0o40755, data: Buffer.alloc(0) });
  const file = (name: string, data: Buffer, mode = 0o100644): Entry => ({ name, mode, data });
  const dirs = new Set<string>(['bin', 'lib', 'lib/modules', 'dev', 'proc', 'sys', 'newroot']);
  for (const m of modules) {
    const parts = m.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`lib/modules/${parts.slice(0, i).join('/')}`);
  }
  return cpioNewc([
    ...[...dirs].sort().map(dir),
    // The kernel opens it for init's output before anything is mounted.
    { name: 'dev/console', mode: 0o20600, data: Buffer.alloc(0), rdev: [5, 1] },
    file('bin/busybox', readFileSync(busybox), 0o100755),
    file('init', Buffer.from(initScript(modules)), 0o100755),
    ...modules.map((m) => file(`lib/modules/${m}`, readFileSync(join(modDir, m)))),
  ]);
}
