// Before a lab starts: the tools and kernel features it needs. On Debian or
// Ubuntu as root, missing packages are installed with apt (and we say which);
// otherwise the error names exactly what is missing.
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { missingLinkKindsOn } from '../net/kernel-probe.js';
import { THIS_MACHINE } from '../net/target.js';
import type { Backend } from '../topologies/backend.js';
import type { Lab } from '../lab/lab-file.js';
import { datapath } from '../datapaths/index.js';
import { LAB_TOOLS, SERVICE_TOOLS, packagesOf } from '../lab/tools.js';
import { NAME_PREFIX } from '../lab/state.js';
import { CannotRunHereError } from '../lab/not-here.js';

export class PreflightError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'PreflightError';
  }
}

/** The kernel cannot run this lab here: the lab is skipped, and the message names what is missing. */
export class MissingFeatureError extends CannotRunHereError {
  constructor(
    readonly lab: string,
    readonly features: string[],
    /** Whose kernel: "the kernel of w1 (node worker)"; this machine's by default. */
    where = 'this kernel',
  ) {
    super(`skipped: ${where} lacks ${features.join(', ')}, which lab ${lab} needs`);
    this.name = 'MissingFeatureError';
  }
}

function onPath(cmd: string): boolean {
  if (cmd.startsWith('/')) return existsSync(cmd);
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => existsSync(`${d}/${cmd}`));
}

/** The tools a lab runs, by their name in the tool table. */
export function requiredTools(lab: Lab): string[] {
  return [...new Set([...LAB_TOOLS, ...datapath(lab.network.plugin).tools, ...(lab.services.length ? SERVICE_TOOLS : [])])];
}

/** Kernel link types the lab creates. */
export function requiredKernelFeatures(lab: Lab): string[] {
  return [...new Set(['veth', 'bridge', ...datapath(lab.network.plugin).kernelFeatures(lab), ...lab.requires])];
}

/** Try each link type in a scratch namespace of this machine: the kernel's own answer, nothing guessed. */
export function missingKernelFeatures(features: string[]): Promise<string[]> {
  return missingLinkKindsOn(THIS_MACHINE, features, scratchName());
}

const scratchName = () => `${NAME_PREFIX}preflight-${process.pid}-${randomBytes(3).toString('hex')}`;

/** `kernel: false`: the nodes' kernels are not this machine's (hosts); nodePreflight asks them once they are reachable. */
export async function preflight(lab: Lab, opts: { install: boolean; log: (msg: string) => void; kernel?: boolean }): Promise<void> {
  if (process.getuid?.() !== 0) throw new PreflightError('cnilab needs root (network namespaces, links, iptables): run it as root');
  await ensureTools(requiredTools(lab), opts);
  if (opts.kernel === false) return;
  const missing = await missingKernelFeatures(requiredKernelFeatures(lab));
  const probe = datapath(lab.network.plugin).probeKernel;
  if (probe) missing.push(...(await probe(lab, THIS_MACHINE)));
  if (missing.length) throw new MissingFeatureError(lab.name, missing);
}

/** The link kinds the lab makes and its datapath's other kernel features, tried on every node's own kernel; the error names each node that lacks one. */
export async function nodePreflight(lab: Lab, backend: Backend): Promise<void> {
  const features = requiredKernelFeatures(lab);
  const probe = datapath(lab.network.plugin).probeKernel;
  const scratch = scratchName();
  const missingOn = async (node: string) => {
    const where = backend.node(node);
    return [...(await missingLinkKindsOn(where, features, scratch)), ...(probe ? await probe(lab, where) : [])];
  };
  const found = await Promise.all(lab.topology.nodes.map(async (n) => ({ node: n.name, missing: await missingOn(n.name) })));
  const lacking = found.filter((f) => f.missing.length);
  if (!lacking.length) return;
  const named = (node: string) => backend.nodeLabel?.(node) ?? `node ${node}`;
  // Each node's own list only where they differ.
  const same = lacking.every((f) => f.missing.join() === lacking[0].missing.join());
  const where = lacking.map((f) => `the kernel of ${named(f.node)}${same ? '' : ` (${f.missing.join(', ')})`}`).join(' and ');
  throw new MissingFeatureError(lab.name, [...new Set(lacking.flatMap((f) => f.missing))], where);
}

/** Tools missing from PATH are installed from their Debian packages (we say which), or named in the error. */
export async function ensureTools(tools: string[], opts: { install: boolean; log: (msg: string) => void }): Promise<void> {
  const missing = tools.filter((t) => !onPath(t));
  if (!missing.length) return;
  const packages = packagesOf(missing);
  const what = `missing tools: ${missing.join(', ')} (Debian packages: ${packages.join(' ')})`;
  if (!opts.install) throw new PreflightError(`${what}; install them, or drop --no-install`);
  if (!existsSync('/usr/bin/apt-get')) throw new PreflightError(`${what}; this is not a Debian/Ubuntu system, install them by hand`);
  opts.log(`installing ${packages.join(' ')} with apt-get`);
  await aptInstall(packages);
}

/** apt-get install, with package scripts kept from starting their daemons in the root namespace. */
export async function aptInstall(packages: string[]): Promise<void> {
  const policy = '/usr/sbin/policy-rc.d';
  const ours = !existsSync(policy);
  if (ours) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    await execa('apt-get', ['update', '-qq'], { env });
    await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { env });
  } catch (e) {
    throw new PreflightError(`apt-get install ${packages.join(' ')} failed: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
  } finally {
    if (ours) rmSync(policy, { force: true });
  }
}
