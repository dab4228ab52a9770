// BPF on the kernel: C compiled with clang, BPF filesystems, objects loaded and
// pinned with bpftool, tc clsact attachments, and map reads and writes through
// bpftool. The one place that runs clang, bpftool and tc.
//
// Pinned objects are global to the machine, so each lab node gets a BPF
// filesystem of its own (every mount of bpffs is a separate instance): nothing
// here pins anything in the machine's /sys/fs/bpf, and unmounting a node's
// filesystem frees everything pinned in it.
import { runAt, type Where } from './target.js';
import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statfsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CommandError, inNetns, run, type Netns } from './exec.js';

const BPF_FS_MAGIC = 0xcafe4a11;
const CFLAGS = ['-O2', '-g', '-Wall', '-target', 'bpf'];

/** True when `dir` is the root of (or inside) a BPF filesystem. */
export function isBpffs(dir: string): boolean {
  try {
    return statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** Mount a fresh BPF filesystem on `dir` (made if absent); nothing happens when one is there already. */
export async function mountBpffs(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (isBpffs(dir)) return;
  await run(['mount', '-t', 'bpf', 'bpf', dir]);
}

let multiarch: Promise<string> | undefined;
/** Debian keeps asm/types.h under /usr/include/<multiarch>; clang names the directory. */
function multiarchInclude(): Promise<string> {
  multiarch ??= run(['clang', '-print-multiarch']).then((r) => `/usr/include/${r.stdout.trim()}`);
  return multiarch;
}

/** A digest of a C file and every header beside it, with the flags: the compiled object's cache key. */
export function sourceDigest(source: string): string {
  const dir = dirname(source);
  const h = createHash('sha256').update(CFLAGS.join(' '));
  const headers = readdirSync(dir).filter((f) => f.endsWith('.h')).sort();
  for (const f of [basename(source), ...headers]) h.update(`\0${f}\0`).update(readFileSync(join(dir, f)));
  return h.digest('hex').slice(0, 16);
}

/**
 * Compile a BPF program with clang (-O2 -g -target bpf) into `cacheDir`, named
 * by the content digest: an unchanged source is never compiled twice, and two
 * labs compiling at once both end up with a whole file.
 */
export async function compileBpf(source: string, cacheDir: string): Promise<string> {
  const out = join(cacheDir, `${basename(source, '.c')}-${sourceDigest(source)}.o`);
  if (existsSync(out)) return out;
  mkdirSync(cacheDir, { recursive: true });
  // Unique per call: two labs in one process may compile the same source at once.
  const tmp = `${out}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await run(['clang', ...CFLAGS, '-I', await multiarchInclude(), '-c', source, '-o', tmp]);
  } catch (e) {
    const why = e instanceof CommandError ? e.stderr.trim() : (e as Error).message;
    throw new Error(`compiling ${source} failed:\n${why}`);
  }
  renameSync(tmp, out);
  // Objects of older versions of this source are of no use any more.
  const stale = new RegExp(`^${basename(source, '.c')}-[0-9a-f]{16}\\.o$`);
  for (const f of readdirSync(cacheDir)) if (stale.test(f) && join(cacheDir, f) !== out) rmSync(join(cacheDir, f), { force: true });
  return out;
}

export function bpftool(args: string[], opts: { input?: string } = {}): Promise<string> {
  return run(['bpftool', ...args], { input: opts.input }).then((r) => r.stdout);
}

export interface LoadOptions {
  /** Pin the object's maps in this directory (they are created). */
  pinMaps?: string;
  /** Use maps already pinned instead of creating them: map name in the object -> pinned path. */
  reuseMaps?: Record<string, string>;
}

/**
 * Load every program of an object file as a tc classifier and pin each one in
 * `progDir` under its function name. The parent of `progDir` must already be on
 * a BPF filesystem: bpftool would otherwise mount one there by itself.
 */
export async function loadObject(object: string, progDir: string, opts: LoadOptions = {}): Promise<void> {
  if (!isBpffs(dirname(progDir))) throw new Error(`${dirname(progDir)} is not on a BPF filesystem`);
  const reuse = Object.entries(opts.reuseMaps ?? {}).flatMap(([name, path]) => ['map', 'name', name, 'pinned', path]);
  await bpftool(['prog', 'loadall', object, progDir, 'type', 'classifier', ...reuse, ...(opts.pinMaps ? ['pinmaps', opts.pinMaps] : [])]);
}

/** Attach a pinned program to a device's ingress, in direct-action mode, through a clsact qdisc. */
export async function attachIngress(netns: Netns, dev: string, pinnedProgram: string): Promise<void> {
  const lines = [`qdisc replace dev ${dev} clsact`, `filter replace dev ${dev} ingress prio 1 handle 1 bpf direct-action pinned ${pinnedProgram}`];
  await run(inNetns(netns, 'tc', ['-batch', '-']), { input: lines.join('\n') + '\n' });
}

export type Bytes = Uint8Array;

const hex = (b: Bytes) => ['hex', ...[...b].map((x) => x.toString(16).padStart(2, '0'))];

/** One change to a pinned map, for `updateMaps`. */
export type MapChange = { map: string; op: 'update'; key: Bytes; value: Bytes } | { map: string; op: 'delete'; key: Bytes };

function changeLine(c: MapChange): string {
  const words = c.op === 'update' ? ['map', 'update', 'pinned', c.map, 'key', ...hex(c.key), 'value', ...hex(c.value)] : ['map', 'delete', 'pinned', c.map, 'key', ...hex(c.key)];
  return words.join(' ');
}

/** Apply changes to pinned maps in order, in one bpftool process. */
export async function updateMaps(changes: MapChange[]): Promise<void> {
  if (!changes.length) return;
  await bpftool(['batch', 'file', '-'], { input: changes.map(changeLine).join('\n') + '\n' });
}

/** Delete keys that may be absent already: a missing key is not an error. */
export async function deleteKeys(map: string, keys: Bytes[]): Promise<void> {
  for (const key of keys) {
    try {
      await bpftool(['map', 'delete', 'pinned', map, 'key', ...hex(key)]);
    } catch (e) {
      if (!(e instanceof CommandError && /No such file or directory|not found/i.test(e.stderr))) throw e;
    }
  }
}

/** Every entry of a pinned map, as raw bytes. */
export async function dumpMap(map: string): Promise<{ key: Bytes; value: Bytes }[]> {
  const entries = JSON.parse((await bpftool(['-j', 'map', 'dump', 'pinned', map])) || '[]') as { key: string[]; value: string[] }[];
  const bytes = (h: string[]) => Uint8Array.from(h.map((x) => parseInt(x, 16)));
  return entries.map((e) => ({ key: bytes(e.key), value: bytes(e.value) }));
}

/** IDs of the pinned programs below `dir` (what a lab's node loaded), read back from the kernel. */
export async function pinnedProgramIds(dir: string): Promise<number[]> {
  if (!existsSync(dir)) return [];
  const ids: number[] = [];
  for (const sub of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, sub);
    const r = await run(['bpftool', '-j', 'prog', 'show', 'pinned', path], { allowFailure: true });
    if (r.exitCode === 0) ids.push((JSON.parse(r.stdout) as { id: number }).id);
  }
  return ids;
}

/** Whether a program with this ID is still loaded anywhere on the machine. */
export async function programLoaded(id: number): Promise<boolean> {
  return (await run(['bpftool', 'prog', 'show', 'id', String(id)], { allowFailure: true })).exitCode === 0;
}

/** A BPF program attached to a device in a namespace (tc clsact ingress/egress, or XDP), as `bpftool net show` lists it. */
export interface BpfAttachment {
  dev: string;
  hook: string;
  name: string;
}

/** Every BPF program on a device of the namespace; none when bpftool is missing or cannot tell. */
export async function bpfAttachments(where: Where): Promise<BpfAttachment[]> {
  const r = await runAt(where, ['bpftool', '-j', 'net', 'show'], { allowFailure: true });
  if (r.exitCode !== 0 || !r.stdout.trim()) return [];
  try {
    const [net] = JSON.parse(r.stdout) as { xdp?: { devname: string; name?: string; mode?: string }[]; tc?: { devname: string; kind: string; name: string }[] }[];
    return [
      ...(net?.xdp ?? []).map((x) => ({ dev: x.devname, hook: `xdp${x.mode ? ` ${x.mode}` : ''}`, name: (x.name ?? '?').split(':')[0] })),
      ...(net?.tc ?? []).map((t) => ({ dev: t.devname, hook: `tc ${t.kind.replace(/^clsact\//, '')}`, name: t.name.split(':')[0] })),
    ];
  } catch {
    return [];
  }
}
