// The node image for the docker backend, made here with no registry: a Debian
// root filesystem from the host's own Debian mirror (debootstrap), holding the
// tools every lab and network plugin names, imported into the engine. The
// rootfs tarball is cached on disk by a hash of what goes into it, so it is
// built once per machine and only imported into each new engine. Node.js and
// cnilab's bundle are not in the image: the backend mounts the host's.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { execa } from 'execa';
import { nodePackages } from '../lab/tools.js';

export const NODE_IMAGE_REPO = 'cnilab-node';
/** Labels on the image: what it is, and the hash it was built from. */
export const IMAGE_LABEL = 'cnilab.image';
export const HASH_LABEL = 'cnilab.image-hash';
/** Bump when the way the rootfs is made changes, so old caches are not reused. */
const RECIPE_VERSION = 2;
export const CACHE_DIR = process.env.CNILAB_CACHE_DIR ?? '/var/cache/cnilab';

export interface ImageRecipe {
  suite: string;
  arch: string;
  packages: string[];
  recipe: number;
}

export function imageRecipe(suite: string, arch = debianArch()): ImageRecipe {
  return { suite, arch, packages: nodePackages(), recipe: RECIPE_VERSION };
}

/** The content hash that names the image and its cached tarball. */
export function imageHash(r: ImageRecipe): string {
  return createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 16);
}

export function imageRef(hash: string): string {
  return `${NODE_IMAGE_REPO}:${hash}`;
}

export function debianArch(arch = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', ppc64: 'ppc64el', s390x: 's390x' };
  const a = map[arch];
  if (!a) throw new Error(`no Debian architecture for ${arch}`);
  return a;
}

export interface AptSource {
  mirror: string;
  suite: string;
}

/**
 * The host's main Debian archive and release, read from its apt sources (deb822
 * `.sources` files or one-line `sources.list`): the node is made from the same
 * mirror the host installs from.
 */
export function parseAptSources(files: { name: string; text: string }[], codename: string): AptSource | undefined {
  const entries: { uris: string[]; suites: string[]; components: string[] }[] = [];
  for (const f of files) {
    if (f.name.endsWith('.sources')) {
      for (const stanza of f.text.split(/\n\s*\n/)) {
        const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(stanza)?.[1].trim().split(/\s+/) ?? [];
        if (!field('Types').includes('deb') || /^Enabled:\s*no/im.test(stanza)) continue;
        entries.push({ uris: field('URIs'), suites: field('Suites'), components: field('Components') });
      }
    } else {
      for (const line of f.text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line.trim());
        if (m) entries.push({ uris: [m[1]], suites: [m[2]], components: m[3].split(/\s+/) });
      }
    }
  }
  const main = entries.find((e) => e.suites.includes(codename) && e.components.includes('main'));
  return main && main.uris[0] ? { mirror: main.uris[0], suite: codename } : undefined;
}

export function hostAptSource(): AptSource {
  const codename = /^VERSION_CODENAME=(\S+)$/m.exec(readText('/etc/os-release'))?.[1];
  if (!codename) throw new Error('cannot read VERSION_CODENAME from /etc/os-release: the docker backend builds its node image from a Debian host');
  const files: { name: string; text: string }[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push({ name: 'sources.list', text: readText('/etc/apt/sources.list') });
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) for (const n of readdirSync(dir).filter((n) => n.endsWith('.sources') || n.endsWith('.list'))) files.push({ name: n, text: readText(join(dir, n)) });
  const src = parseAptSources(files, codename);
  if (!src) throw new Error(`no apt source for "${codename} main" in /etc/apt/sources.list(.d): the node image is built from the host's Debian mirror`);
  return src;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function debootstrapArgv(r: ImageRecipe, mirror: string, target: string): string[] {
  return ['debootstrap', '--variant=minbase', `--arch=${r.arch}`, `--include=${r.packages.join(',')}`, r.suite, target, mirror];
}

/** Dockerfile instructions applied on import: PATH (an imported image has no environment) and the labels. */
export function importChanges(hash: string): string[] {
  return ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `LABEL ${IMAGE_LABEL}=node ${HASH_LABEL}=${hash}`];
}

/** Mount points at or below `dir`, deepest first. */
function mountsBelow(dir: string): string[] {
  const lines = readText('/proc/self/mountinfo').split('\n');
  return lines
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')))
    .reverse();
}

/** Remove a build directory without ever crossing into a mount (debootstrap mounts /proc in it). */
async function removeBuildDir(dir: string): Promise<void> {
  for (const m of mountsBelow(dir)) await execa('umount', ['-l', m], { reject: false });
  await execa('rm', ['-rf', '--one-file-system', dir], { reject: false });
}

/**
 * The cached rootfs tarball for `hash`, built with debootstrap when missing.
 * `kind` names the file (node-<hash>.tar for containers, vm-<hash>.tar for VMs).
 */
export async function ensureRootfsTar(r: ImageRecipe, progress: (msg: string) => void = () => {}, kind = 'node'): Promise<string> {
  const hash = imageHash(r);
  const tar = join(CACHE_DIR, `${kind}-${hash}.tar`);
  if (existsSync(tar)) return tar;
  mkdirSync(CACHE_DIR, { recursive: true });
  const { mirror } = hostAptSource();
  const target = join(CACHE_DIR, `build-${hash}-${process.pid}`);
  const log = join(CACHE_DIR, `build-${hash}.log`);
  progress(`building the ${kind === 'node' ? `node image ${imageRef(hash)}` : `${kind} root filesystem ${hash}`} with debootstrap (once; minutes; log ${log})`);
  await removeBuildDir(target);
  try {
    const argv = debootstrapArgv(r, mirror, target);
    const child = execa(argv[0], argv.slice(1), { reject: false, all: true });
    // Where debootstrap is, every 15 s: a build takes minutes.
    let last = '';
    child.all?.on('data', (d: Buffer) => (last = String(d).trim().split('\n').pop() ?? last));
    const t0 = Date.now();
    const ticker = setInterval(() => progress(`  debootstrap, ${Math.round((Date.now() - t0) / 1000)} s: ${last}`), 15_000);
    const res = await child.finally(() => clearInterval(ticker));
    writeFileSync(log, res.all ?? '');
    if (res.exitCode !== 0) {
      const missing = (res as { code?: string }).code === 'ENOENT';
      throw new Error(
        missing
          ? 'debootstrap is not installed (Debian package debootstrap): the docker backend needs it once to build its node image'
          : `debootstrap failed (exit ${res.exitCode}); see ${log}:\n${(res.all ?? '').trimEnd().split('\n').slice(-10).join('\n')}`,
      );
    }
    // Smaller image; and no package script inside a node ever starts a daemon on its own.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/info']) {
      rmSync(join(target, d), { recursive: true, force: true });
    }
    writeFileSync(join(target, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    await execa('tar', ['-C', target, '--one-file-system', '-cf', `${tar}.tmp`, '.']);
    renameSync(`${tar}.tmp`, tar);
    pruneCache(tar, kind);
    return tar;
  } finally {
    await removeBuildDir(target);
    rmSync(`${tar}.tmp`, { force: true });
  }
}

/** Keep the newest tarballs only (this one and the one before, for going back and forth between versions). */
function pruneCache(keep: string, kind: string, count = 2): void {
  const tars = readdirSync(CACHE_DIR)
    .filter((f) => new RegExp(`^${kind}-[0-9a-f]{16}\\.tar$`).test(f))
    .map((f) => join(CACHE_DIR, f))
    .filter((f) => f !== keep)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  for (const old of tars.slice(count - 1)) {
    rmSync(old, { force: true });
    rmSync(join(CACHE_DIR, `build-${old.slice(-20, -4)}.log`), { force: true });
  }
}

async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch {
    return false;
  }
}

/** The node image in this engine: already there, imported from the cached tarball, or built first. */
export async function ensureNodeImage(docker: Docker, progress?: (msg: string) => void): Promise<string> {
  const r = imageRecipe(hostAptSource().suite);
  const hash = imageHash(r);
  const ref = imageRef(hash);
  if (await imageExists(docker, ref)) return ref;
  const tar = await ensureRootfsTar(r, progress);
  const stream = await docker.importImage(createReadStream(tar), { repo: NODE_IMAGE_REPO, tag: hash, changes: importChanges(hash) });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err?.message ?? out.find((o) => o.error)?.error;
      if (failed) reject(new Error(`importing ${tar} as ${ref} failed: ${failed}`));
      else resolve();
    }),
  );
  return ref;
}
