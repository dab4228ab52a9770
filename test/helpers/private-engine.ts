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
}

/** The names of the root namespace's links. */
export async function rootLinks(): Promise<string[]> {
  const r = await run(['ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname);
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
  return { engine, dir, image };
}

/** startEngine in a suite's `before` hook: where none can start, the suite is skipped and each of its tests says why in its title. */
export async function startTestEngine(ctx: Mocha.Context, commands: Record<string, string> = {}): Promise<TestEngine | undefined> {
  const t = await startEngine(commands);
  if (typeof t !== 'string') return t;
  const sayWhy = (suite: Mocha.Suite): void => {
    for (const test of suite.tests) test.title += ` (skipped: ${t})`;
    suite.suites.forEach(sayWhy);
  };
  sayWhy(ctx.test!.parent!);
  ctx.skip();
}

/**
 * Remove every container and network of the engine, stop it by its PID, delete
 * its directory; then fail if a bridge of this engine is still in the root namespace.
 */
export async function stopTestEngine(t: TestEngine | undefined): Promise<void> {
  if (!t) return;
  const { docker } = t.engine;
  // A bridge network is the link br-<first 12 characters of its id>; others' engines on this machine make theirs meanwhile.
  const bridges: string[] = [];
  try {
    for (const c of await docker.listContainers({ all: true })) await docker.getContainer(c.Id).remove({ force: true });
    for (const n of await docker.listNetworks()) {
      if (['bridge', 'host', 'none'].includes(n.Name)) continue;
      if (n.Driver === 'bridge') bridges.push(`br-${n.Id.slice(0, 12)}`);
      await docker.getNetwork(n.Id).remove();
    }
  } finally {
    await stopPrivateEngine(t.engine);
    await execa('rm', ['-rf', '--one-file-system', t.dir], { reject: false });
  }
  const left = (await rootLinks()).filter((l) => bridges.includes(l));
  if (left.length) throw new Error(`the root namespace still has this engine's ${left.join(', ')} after it stopped`);
}
