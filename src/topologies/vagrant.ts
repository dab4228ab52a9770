// The vagrant backend: each node is a VM that the top-level Vagrantfile defines
// from the lab's topology, on a private network that is the underlay. Vagrant
// brings the VMs up and provisions them (packages, Node.js, cnilab's bundle as
// a synced folder); every command then goes over the SSH connection `vagrant
// ssh` uses, taken once from `vagrant ssh-config` and kept open (starting
// Vagrant for each of a lab's hundreds of commands would cost seconds each).
// The lab's directory is a synced folder at the same path in every VM, so logs
// and pod files are where the host looks for them, as on the other backends.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError, type RunResult } from '../net/exec.js';
import { ROOT } from '../lab/paths.js';
import { labDir, readState, STATE_ROOT, type StateFile } from '../lab/state.js';
import type { CommandOptions, ExecOptions, Topology } from './backend.js';
import { nodePackages } from '../lab/tools.js';
import { NODE_DIRS, nodeInitArgv } from './node-commands.js';
import { runCommand, sshArgv, sshConfigHosts, sshExitArgv, type CommandRunner, type SshTarget } from './ssh.js';
import { RemoteNodeBackend } from './remote-node.js';
import { CannotRunHereError } from '../lab/not-here.js';

/** What the Vagrantfile reads from its environment. */
export interface VagrantContext {
  /** The directory holding the Vagrantfile (cnilab's root). */
  root: string;
  labFile: string;
  instance: string;
  stateRoot: string;
  /** The host's Node.js path: the plugins' and agents' command lines name it, so the VMs have it there too. */
  nodeBinary: string;
  packages: string[];
}

export function vagrantContext(lab: string, labFile: string): VagrantContext {
  return { root: ROOT, labFile, instance: lab, stateRoot: STATE_ROOT, nodeBinary: process.execPath, packages: nodePackages() };
}

export function vagrantEnv(c: VagrantContext): Record<string, string> {
  return {
    CNILAB_LAB: c.labFile,
    CNILAB_INSTANCE: c.instance,
    CNILAB_STATE_DIR: c.stateRoot,
    CNILAB_NODE_BINARY: c.nodeBinary,
    CNILAB_PACKAGES: c.packages.join(' '),
    // One set of machines per lab instance: two instances never share VMs.
    VAGRANT_DOTFILE_PATH: join(c.root, '.vagrant', c.instance),
  };
}

export const vagrantUpArgv = (nodes: string[]) => ['vagrant', 'up', '--provision', ...nodes];
export const vagrantSshConfigArgv = (nodes: string[]) => ['vagrant', 'ssh-config', ...nodes];
export const vagrantDestroyArgv = () => ['vagrant', 'destroy', '--force'];

function paths(lab: string) {
  return { sshConfig: join(labDir(lab), 'vagrant-ssh-config'), controlDir: join(labDir(lab), 'ssh') };
}

/** A VM as ssh reaches it: Vagrant's config, the machine's name as its Host, root through sudo. */
function sshTarget(lab: string, node: string): SshTarget {
  const { sshConfig, controlDir } = paths(lab);
  return { config: sshConfig, controlDir, host: node, sudo: true };
}

export class VagrantBackend extends RemoteNodeBackend {
  readonly kind = 'vagrant';
  readonly context: VagrantContext;

  constructor(
    topo: Topology,
    state: StateFile,
    private readonly runner: CommandRunner = runCommand,
  ) {
    super(topo, state);
    this.context = vagrantContext(topo.lab, state.state.labFile ?? topo.lab);
  }

  private async vagrant(argv: string[]): Promise<RunResult> {
    const r = await this.runner(argv, { env: vagrantEnv(this.context), cwd: this.context.root });
    if (r.exitCode !== 0) throw new CommandError(argv, r.exitCode, r.stderr || r.stdout);
    return r;
  }

  async up(): Promise<void> {
    if (this.topo.underlayV6) throw new CannotRunHereError(`skipped: an IPv6 underlay (topology.underlayV6) is built by cnilab's own VMs (the vagrant backend's default), not with CNILAB_VAGRANT_DRIVER=vagrant`);
    const nodes = this.topo.nodes.map((n) => n.name);
    const { sshConfig, controlDir } = paths(this.topo.lab);
    try {
      mkdirSync(controlDir, { recursive: true });
      await this.vagrant(vagrantUpArgv(nodes));
      writeFileSync(sshConfig, (await this.vagrant(vagrantSshConfigArgv(nodes))).stdout);
      for (const n of nodes) await this.exec(n, nodeInitArgv(NODE_DIRS));
      await this.checkUnderlay("The VMs' private network is the underlay: check the provider's host-only network for that subnet.");
      this.state.update((s) => (s.status = 'up'));
    } catch (e) {
      await this.down();
      throw e;
    }
  }

  async down(): Promise<void> {
    await cleanVagrantLab(this.topo.lab, this.runner);
  }

  protected nodeCommand(node: string, argv: string[], opts: CommandOptions = {}): string[] {
    return sshArgv(sshTarget(this.topo.lab, node), argv, undefined, opts);
  }

  async exec(node: string, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const r = await this.runner(sshArgv(sshTarget(this.topo.lab, node), argv, opts.env), { input: opts.input });
    if (r.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, r.exitCode, r.stderr || r.stdout);
    return r;
  }
}

/**
 * Remove a vagrant lab: close the shared SSH connections, destroy its VMs
 * (everything a node ran goes with them), then its directories.
 */
export async function cleanVagrantLab(lab: string, runner: CommandRunner = runCommand): Promise<{ unreachable?: string }> {
  const state = readState(lab);
  const context = vagrantContext(lab, state?.labFile ?? lab);
  const { sshConfig } = paths(lab);
  let unreachable: string | undefined;
  if (existsSync(sshConfig)) {
    for (const node of sshConfigHosts(readFileSync(sshConfig, 'utf8'))) await runner(sshExitArgv(sshTarget(lab, node)), {}).catch(() => undefined);
  }
  const dotfiles = vagrantEnv(context).VAGRANT_DOTFILE_PATH;
  // Vagrant records every machine it made under machines/: with none, there is nothing to destroy.
  if (existsSync(join(dotfiles, 'machines'))) {
    try {
      const r = await runner(vagrantDestroyArgv(), { env: vagrantEnv(context), cwd: context.root });
      if (r.exitCode !== 0) unreachable = `vagrant destroy for ${lab} failed: ${(r.stderr || r.stdout).trim()}`;
    } catch (e) {
      unreachable = `${(e as Error).message}: the VMs of ${lab} are left; remove them with the provider's tools`;
    }
  }
  if (!unreachable) rmSync(dotfiles, { recursive: true, force: true });
  rmSync(labDir(lab), { recursive: true, force: true });
  return { unreachable };
}
