// A private dockerd for one suite (docker backend, hosts backend): started under a
// temporary directory, the node image imported, and at the end everything on it
// removed before it stops. A Docker bridge network is a br-<id> link in the root
// namespace that dockerd deletes only while it runs: stopping the engine with a
// network left would leave that link behind for good.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { run } from '../../src/net/exec.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { startPrivateEngine, stopPrivateEngine, type PrivateEngine } from '../../src/topologies/docker-engine.js';
import { ensureNodeImage } from '../../src/topologies/docker-image.js';

export interface TestEngine {
  engine: PrivateEngine;
  /** The suite's temporary directory; the engine keeps its files in dir/dockerd. */
  dir: string;
  /** The node image, imported into this engine. */
  image: string;
  /** The root namespace's links before the engine started. */
  linksBefore: string[];
}

/** The root namespace's links of the kinds a Docker engine makes (others' labs on this machine make links of their own meanwhile). */
export async function rootLinks(): Promise<string[]> {
  const r = await run(['ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => /^(br-|docker|veth)/.test(n));
}

/**
 * Start a private engine, or say why none can start here (not root, a command
 * missing, dockerd refusing). `commands`: what else the caller needs installed,
 * with the Debian package that has each.
 */
export async function startEngine(commands: Record<string, string> = {}): Promise<TestEngine | string> {
  requireBuilt();
  if (process.getuid?.() !== 0) return 'starting dockerd needs root';
  const needed: Record<string, string> = { dockerd: 'docker.io', ...commands };
  const absent: string[] = [];
  for (const c of Object.keys(needed)) if ((await run(['sh', '-c', `command -v ${c}`], { allowFailure: true })).exitCode !== 0) absent.push(c);
  if (absent.length) return `${absent.join(', ')} not installed (Debian packages ${[...new Set(absent.map((c) => needed[c]))].join(', ')})`;
  const linksBefore = await rootLinks();
  const dir = mkdtempSync('/tmp/cnilab-engine-');
  let engine: PrivateEngine;
  try {
    engine = await startPrivateEngine(join(dir, 'dockerd'));
  } catch (e) {
    await execa('rm', ['-rf', '--one-file-system', dir], { reject: false });
    return `no Docker engine can be started here: ${(e as Error).message}`;
  }
  // Built once per machine (cached by its hash), imported into this fresh engine.
  const image = await ensureNodeImage(engine.docker, (m) => console.log(`      ${m}`));
  return { engine, dir, image, linksBefore };
}

/** startEngine in a suite's `before` hook: where none can start, the suite is skipped and says why. */
export async function startTestEngine(ctx: Mocha.Context, commands: Record<string, string> = {}): Promise<TestEngine | undefined> {
  const t = await startEngine(commands);
  if (typeof t !== 'string') return t;
  console.log(`      skipped: ${t}`);
  ctx.skip();
}

/**
 * Remove every container and network of the engine, stop it by its PID, delete
 * its directory; then fail if the root namespace has a link it did not have before.
 */
export async function stopTestEngine(t: TestEngine | undefined): Promise<void> {
  if (!t) return;
  const { docker } = t.engine;
  try {
    for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true });
    for (const n of await docker.listNetworks()) {
      if (!['bridge', 'host', 'none'].includes(n.Name)) await docker.getNetwork(n.Id).remove();
    }
  } finally {
    await stopPrivateEngine(t.engine);
    await execa('rm', ['-rf', '--one-file-system', t.dir], { reject: false });
  }
  const added = (await rootLinks()).filter((l) => !t.linksBefore.includes(l));
  if (added.length) throw new Error(`the root namespace has links it did not have before the engine started: ${added.join(', ')}`);
}
