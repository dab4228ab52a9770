// What the docker and vagrant backends share: nodes with a filesystem and a
// PID space of their own, reached only by running a command on them (`docker
// exec`, ssh). Everything here is built on `exec` and the pure commands of
// node-commands.ts; a backend adds the transport and how nodes come and go.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withResolvConf, withResolvConfIfThere } from '../net/netns.js';
import type { RunResult } from '../net/exec.js';
import type { StateFile } from '../lab/state.js';
import { BackendTarget, POD_RESOLV_CONF, type Backend, type CommandOptions, type ExecOptions, type Started, type StartedProcess, type Target, type Topology } from './backend.js';
import { podNetns } from './netns.js';
import { startTimeArgv, bpffsArgv, createSandboxArgv, parseStarted, podArgv, readFileArgv, removeSandboxArgv, startArgv, stopArgv, writeFileArgv } from './node-commands.js';
import type { ProcessRecord } from '../lab/state.js';

export abstract class RemoteNodeBackend implements Backend {
  abstract readonly kind: string;
  constructor(
    readonly topo: Topology,
    readonly state: StateFile,
  ) {}

  abstract up(): Promise<void>;
  abstract down(): Promise<void>;
  abstract exec(node: string, argv: string[], opts?: ExecOptions): Promise<RunResult>;
  /** The argv that runs `argv` on a node through this backend's transport (docker exec, ssh). */
  protected abstract nodeCommand(node: string, argv: string[], opts?: CommandOptions): string[];

  commandFor(node: string, pod: string | undefined, argv: string[], opts?: CommandOptions): string[] {
    return this.nodeCommand(node, pod ? this.inPod(pod, argv) : argv, opts);
  }

  node(name: string): Target {
    return new BackendTarget(this, name);
  }

  pod(node: string, pod: string): Target {
    return new BackendTarget(this, node, pod);
  }

  /** Node-private paths are the real ones: the node has its own filesystem. */
  nodePath(_node: string, path: string): string {
    return path.startsWith('/') ? path : `/${path}`;
  }

  /** The first node reaches every other over the underlay, or `explain` says what may block it. */
  protected async checkUnderlay(explain: string): Promise<void> {
    const [first, ...rest] = this.topo.nodes;
    for (const n of rest) {
      for (const addr of [n.address, ...(this.topo.underlayV6 && n.addressV6 ? [n.addressV6] : [])]) {
        const r = await this.exec(first.name, ['ping', '-c', '1', '-W', '2', addr], { allowFailure: true });
        if (r.exitCode !== 0) throw new Error(`node ${first.name} cannot reach ${n.name} (${addr}) over the ${addr === n.address ? '' : 'IPv6 '}underlay. ${explain}`);
      }
    }
  }

  /**
   * argv run in a pod's sandbox on its node; with the pod's own resolv.conf (a lab with cluster DNS)
   * bound over /etc/resolv.conf. The lab's directory is the same path on the node, so it is read from there.
   */
  private inPod(pod: string, argv: string[]): string[] {
    const resolv = join(this.state.dir, 'pods', pod, POD_RESOLV_CONF);
    const inNs = !this.labDirShared ? withResolvConfIfThere(resolv, argv) : existsSync(resolv) ? withResolvConf(resolv, argv) : argv;
    return podArgv(podNetns(this.topo.lab, pod), pod, inNs);
  }

  podExec(node: string, pod: string, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    return this.exec(node, this.inPod(pod, argv), opts);
  }

  /**
   * Logs go to the lab's directory, which every node sees at the same path
   * (a bind mount, a synced folder), so the host reads them as they grow.
   */
  private async launch(node: string, name: string, argv: string[], log: string, env?: Record<string, string>): Promise<Started> {
    const r = await this.exec(node, startArgv(log, argv), { env });
    const { pid, startTime } = parseStarted(r.stdout);
    this.state.update((s) => s.processes.push({ pid, startTime, name, node }));
    return { pid, node, log };
  }

  start(node: string, name: string, argv: string[], opts: { env?: Record<string, string> } = {}): Promise<Started> {
    return this.launch(node, name, argv, join(this.state.dir, 'nodes', node, 'log', `${name}.log`), opts.env);
  }

  podStart(node: string, pod: string, name: string, argv: string[]): Promise<Started> {
    const log = join(this.state.dir, 'pods', pod, 'log', `${pod}-${name}.log`);
    return this.launch(node, `${pod}-${name}`, this.inPod(pod, argv), log);
  }

  async isRunning(p: ProcessRecord): Promise<boolean> {
    const r = await this.exec(p.node, startTimeArgv(p.pid), { allowFailure: true });
    return r.stdout.trim() === String(p.startTime);
  }

  /** PIDs are the node's own (its PID space): the stop runs on the node, and only if the start time still matches. */
  async stop({ pid, node }: StartedProcess): Promise<void> {
    const rec = this.state.state.processes.find((p) => p.pid === pid && p.node === node);
    if (rec) await this.exec(rec.node, stopArgv(rec.pid, rec.startTime), { allowFailure: true });
    // Only that record: another node's process under the same PID is not this one.
    if (rec) this.state.update((s) => (s.processes = s.processes.filter((p) => !(p.pid === rec.pid && p.node === rec.node))));
  }

  /**
   * The lab's directory is at the same path on every node; where it is this machine's own
   * (a bind mount, a synced folder) its files are read and written here, without a round trip.
   */
  protected readonly labDirShared: boolean = true;

  private local(path: string): boolean {
    return this.labDirShared && path.startsWith(`${this.state.dir}/`);
  }

  async writeFile(node: string, path: string, content: string): Promise<void> {
    if (this.local(path)) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
    } else await this.exec(node, writeFileArgv(path), { input: content });
  }

  async readFile(node: string, path: string): Promise<string | undefined> {
    if (this.local(path)) return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
    const r = await this.exec(node, readFileArgv(path), { allowFailure: true });
    return r.exitCode === 0 ? r.stdout : undefined;
  }

  async createSandbox(node: string, pod: string): Promise<{ netns: string }> {
    const name = podNetns(this.topo.lab, pod);
    await this.exec(node, createSandboxArgv(name, pod));
    // The path as the node (where the CNI plugins run) sees it.
    return { netns: `/run/netns/${name}` };
  }

  /** A BPF filesystem of the node's own (for datapaths that pin programs and maps), in the node's own mount table. */
  async bpffs(node: string): Promise<string> {
    await this.exec(node, bpffsArgv());
    return '/sys/fs/bpf';
  }

  async removeSandbox(node: string, pod: string): Promise<void> {
    await this.exec(node, removeSandboxArgv(podNetns(this.topo.lab, pod), pod), { allowFailure: true });
    this.state.update((s) => (s.processes = s.processes.filter((p) => !(p.node === node && p.name.startsWith(`${pod}-`)))));
  }
}
