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
 * Start a private engine for the suite whose `before` hook this is, or skip the
 * suite saying why (not root, a command missing, no engine can start here).
 * `commands`: what else the suite needs installed, with the Debian packages to name.
 */
export async function startTestEngine(ctx: Mocha.Context, commands: Record<string, string> = {}): Promise<TestEngine | undefined> {
  const skip = (why: string) => {
    console.log(`      skipped: ${why}`);
    ctx.skip();
  };
  requireBuilt();
  if (process.getuid?.() !== 0) return skip('the test needs root to start dockerd'), undefined;
  const needed = { dockerd: 'docker.io', ...commands };
  const absent: string[] = [];
  for (const c of Object.keys(needed)) if ((await run(['sh', '-c', `command -v ${c}`], { allowFailure: true })).exitCode !== 0) absent.push(c);
  if (absent.length) return skip(`${absent.join(', ')} not installed (Debian packages ${[...new Set(absent.map((c) => needed[c as keyof typeof needed]))].join(', ')})`), undefined;
  const linksBefore = await rootLinks();
  const dir = mkdtempSync('/tmp/cnilab-engine-');
  let engine: PrivateEngine;
  try {
    engine = await startPrivateEngine(join(dir, 'dockerd'));
  } catch (e) {
    await execa('rm', ['-rf', '--one-file-system', dir], { reject: false });
    return skip(`no Docker engine can be started here: ${(e as Error).message}`), undefined;
  }
  // Built once per machine (cached by its hash), imported into this fresh engine.
  const image = await ensureNodeImage(engine.docker, (m) => console.log(`      ${m}`));
  return { engine, dir, image, linksBefore };
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
