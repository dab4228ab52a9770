// The embedded backend: each node is a network namespace with its own hostname
// (a UTS namespace) and a private directory for the files a node keeps; the
// underlay is a bridge inside a namespace of the lab's own. Nothing of the lab
// is routed or addressed in the root namespace.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { netnsPath, run, runSpawned, startDetached, type RunResult } from '../net/exec.js';
import { Ip } from '../net/ip.js';
import { addNetns, deleteNetns, listNetns, netnsInode, withResolvConf } from '../net/netns.js';
import { addNetnsMany, deleteNetnsMany, inNetnsThread, loopbackUp, pinHostname, spawnedIn, unmountMany } from '../net/sandboxes.js';
import { isBpffs, mountBpffs } from '../net/bpf.js';
import { NAME_PREFIX, labDir, listLabs, processStartTime, StateFile, type ProcessRecord } from '../lab/state.js';
import { isRunning, pidsInNetns, stillOurs, stopPid, stopPids, stopRecorded } from '../lab/processes.js';
import { BackendTarget, POD_RESOLV_CONF, type Backend, type ExecOptions, type Started, type StartedProcess, type Target, type Topology } from './backend.js';

export const UNDERLAY_BRIDGE = 'br0';

export function nodeNetns(lab: string, node: string): string {
  return `${NAME_PREFIX}${lab}-${node}`;
}
export function podNetns(lab: string, pod: string): string {
  return `${NAME_PREFIX}${lab}-pod-${pod}`;
}
export function underlayNetns(lab: string): string {
  return `${NAME_PREFIX}${lab}-underlay`;
}

export class NetnsBackend implements Backend {
  readonly kind = 'netns';
  constructor(
    readonly topo: Topology,
    readonly state: StateFile,
  ) {}

  private nodeRoot(node: string): string {
    return join(this.state.dir, 'nodes', node);
  }
  private podRoot(pod: string): string {
    return join(this.state.dir, 'pods', pod);
  }

  /** A node's own files live under its directory; the lab's directory itself is the same path for every node, as on every backend. */
  nodePath(node: string, path: string): string {
    return path.startsWith(`${this.state.dir}/`) ? path : join(this.nodeRoot(node), path);
  }

  /** Make a namespace and record it first, so a crash right after still leaves a trace. */
  private async addNetns(name: string): Promise<void> {
    this.state.update((s) => s.netns.push(name));
    await addNetns(name);
  }

  /** A persistent UTS namespace pinned on a file, holding a hostname. */
  private async addHostname(file: string, hostname: string): Promise<void> {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    this.state.update((s) => s.mounts.push(file));
    await run(['unshare', `--uts=${file}`, 'hostname', hostname]);
  }

  async up(): Promise<void> {
    const { lab, nodes, underlay } = this.topo;
    try {
      const under = underlayNetns(lab);
      await this.addNetns(under);
      const underIp = new Ip(under);
      const batch: string[][] = [
        ['link', 'set', 'lo', 'up'],
        ['link', 'add', UNDERLAY_BRIDGE, 'type', 'bridge'],
        ['link', 'set', UNDERLAY_BRIDGE, 'up'],
      ];
      for (const [i, n] of nodes.entries()) {
        const ns = nodeNetns(lab, n.name);
        await this.addNetns(ns);
        await this.addHostname(join(this.nodeRoot(n.name), 'uts'), n.name);
        for (const d of ['etc/cni/net.d', 'var/lib/cni', 'run/flannel', 'var/log']) mkdirSync(this.nodePath(n.name, d), { recursive: true });
        const port = `p${i}-${n.name}`.slice(0, 15);
        batch.push(['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
        batch.push(['link', 'set', port, 'master', UNDERLAY_BRIDGE, 'up']);
      }
      await underIp.batch(batch);
      await Promise.all(
        nodes.map(async (n) => {
          const ip = new Ip(nodeNetns(lab, n.name));
          await ip.batch([
            ['link', 'set', 'lo', 'up'],
            ['addr', 'add', `${n.address}/${underlay.prefix}`, 'dev', 'eth0'],
            // A dual-stack node: its IPv6 underlay address, usable at once (no DAD on a link we built).
            ...(this.topo.underlayV6 && n.addressV6 ? [['addr', 'add', `${n.addressV6}/${this.topo.underlayV6.prefix}`, 'dev', 'eth0', 'nodad']] : []),
            ['link', 'set', 'eth0', 'up'],
          ]);
          // New namespaces inherit these from the root namespace here: set them as a node has them.
          await ip.sysctl({
            'net.ipv4.ip_forward': 1,
            'net.ipv4.conf.all.rp_filter': 0,
            'net.ipv4.conf.default.rp_filter': 0,
            ...(this.topo.underlayV6 ? { 'net.ipv6.conf.all.forwarding': 1 } : {}),
          });
        }),
      );
      this.state.update((s) => (s.status = 'up'));
    } catch (e) {
      await this.down();
      throw e;
    }
  }

  async down(): Promise<void> {
    await cleanNetnsLab(this.state.state.lab);
  }

  private nsenter(netns: string, uts: string, argv: string[]): string[] {
    return ['nsenter', `--net=${netnsPath(netns)}`, `--uts=${uts}`, '--', ...argv];
  }

  private nodeArgv(node: string, argv: string[]): string[] {
    return this.nsenter(nodeNetns(this.topo.lab, node), join(this.nodeRoot(node), 'uts'), argv);
  }

  private podArgv(pod: string, argv: string[]): string[] {
    const resolv = join(this.podRoot(pod), POD_RESOLV_CONF);
    const inner = existsSync(resolv) ? withResolvConf(resolv, argv) : argv;
    return this.nsenter(podNetns(this.topo.lab, pod), join(this.podRoot(pod), 'uts'), inner);
  }

  node(name: string): Target {
    return new BackendTarget(this, name);
  }

  pod(node: string, pod: string): Target {
    return new BackendTarget(this, node, pod);
  }

  commandFor(node: string, pod: string | undefined, argv: string[]): string[] {
    // nsenter runs the command in this terminal: a shell gets the terminal as it is.
    return pod ? this.podArgv(pod, argv) : this.nodeArgv(node, argv);
  }

  netnsPath(node: string, pod?: string): string {
    return netnsPath(pod ? podNetns(this.topo.lab, pod) : nodeNetns(this.topo.lab, node));
  }

  private nodeNs(node: string) {
    return { net: netnsPath(nodeNetns(this.topo.lab, node)), uts: join(this.nodeRoot(node), 'uts') };
  }

  private podNs(pod: string) {
    return { net: netnsPath(podNetns(this.topo.lab, pod)), uts: join(this.podRoot(pod), 'uts') };
  }

  /**
   * The command started in the node's or pod's namespaces directly (one process fewer than nsenter, which
   * is the fallback), through posix_spawn: a pod's CNI calls cost no fork of this process.
   */
  private runIn(ns: { net: string; uts: string }, argv: string[], viaNsenter: () => string[], opts: ExecOptions): Promise<RunResult> {
    const o = { input: opts.input, allowFailure: opts.allowFailure, env: { ...process.env, ...opts.env } };
    return spawnedIn(ns, () => runSpawned(argv, o)) ?? run(viaNsenter(), o);
  }

  exec(node: string, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    return this.runIn(this.nodeNs(node), argv, () => this.nodeArgv(node, argv), opts);
  }

  podExec(_node: string, pod: string, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const resolv = join(this.podRoot(pod), POD_RESOLV_CONF);
    const inner = existsSync(resolv) ? withResolvConf(resolv, argv) : argv;
    return this.runIn(this.podNs(pod), inner, () => this.podArgv(pod, argv), opts);
  }

  private launch(node: string, name: string, ns: { net: string; uts: string }, argv: string[], viaNsenter: () => string[], logDir: string, env?: Record<string, string>): Started {
    mkdirSync(logDir, { recursive: true });
    const log = join(logDir, `${name}.log`);
    const fd = openSync(log, 'a');
    try {
      // Started in the namespaces, or through nsenter, which execs it in place: either way this PID is the process itself.
      const opts = { stdout: fd, stderr: fd, env: { ...process.env, ...env } };
      const pid = spawnedIn(ns, () => startDetached(argv, opts)) ?? startDetached(viaNsenter(), opts);
      const startTime = processStartTime(pid) ?? 0;
      this.state.update((s) => s.processes.push({ pid, startTime, name, node }));
      return { pid, node, log };
    } finally {
      closeSync(fd);
    }
  }

  async start(node: string, name: string, argv: string[], opts: { env?: Record<string, string> } = {}): Promise<Started> {
    return this.launch(node, name, this.nodeNs(node), argv, () => this.nodeArgv(node, argv), this.nodePath(node, 'var/log'), opts.env);
  }

  async startForNodes(nodes: string[], name: string, argv: string[], opts: { env?: Record<string, string> } = {}): Promise<Started> {
    const logDir = join(this.state.dir, 'log');
    mkdirSync(logDir, { recursive: true });
    const log = join(logDir, `${name}.log`);
    const fd = openSync(log, 'a');
    try {
      const underlay = netnsPath(underlayNetns(this.topo.lab));
      const pid = inNetnsThread(underlay, () => startDetached(argv, { stdout: fd, stderr: fd, env: { ...process.env, ...opts.env } }));
      const startTime = processStartTime(pid) ?? 0;
      this.state.update((s) => s.processes.push(...nodes.map((node) => ({ pid, startTime, name, node }))));
      return { pid, node: nodes[0], log };
    } finally {
      closeSync(fd);
    }
  }

  async podStart(node: string, pod: string, name: string, argv: string[]): Promise<Started> {
    const resolv = join(this.podRoot(pod), POD_RESOLV_CONF);
    const inner = existsSync(resolv) ? withResolvConf(resolv, argv) : argv;
    return this.launch(node, `${pod}-${name}`, this.podNs(pod), inner, () => this.podArgv(pod, argv), join(this.podRoot(pod), 'log'));
  }

  async isRunning(p: ProcessRecord): Promise<boolean> {
    // A zombie keeps its start time until its parent reaps it, and children started
    // through posix_spawn are reaped by a sweep, not at once: it has exited all the same.
    return processStartTime(p.pid) === p.startTime && isRunning(p.pid);
  }

  /** One PID space for every node here: a PID names one process, whatever nodes record it; all its records go. */
  async stop({ pid }: StartedProcess): Promise<void> {
    const rec = this.state.state.processes.find((p) => p.pid === pid);
    if (rec) await stopRecorded(rec);
    this.state.update((s) => (s.processes = s.processes.filter((p) => p.pid !== pid)));
  }

  async writeFile(node: string, path: string, content: string): Promise<void> {
    const file = this.nodePath(node, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }

  async readFile(node: string, path: string): Promise<string | undefined> {
    try {
      return readFileSync(this.nodePath(node, path), 'utf8');
    } catch {
      return undefined;
    }
  }

  async createSandbox(_node: string, pod: string): Promise<{ netns: string }> {
    const name = podNetns(this.topo.lab, pod);
    await this.addNetns(name);
    await this.addHostname(join(this.podRoot(pod), 'uts'), pod);
    // The runtime's part, as CRI does before calling CNI: loopback up.
    await new Ip(name).cmd('link', 'set', 'lo', 'up');
    return { netns: netnsPath(name) };
  }

  /** Many sandboxes at once: recorded in one write, made by one `ip` process, loopback and hostname by system calls. */
  async createSandboxes(_node: string, pods: string[]): Promise<{ netns: string }[]> {
    const names = pods.map((p) => podNetns(this.topo.lab, p));
    const uts = pods.map((p) => join(this.podRoot(p), 'uts'));
    for (const f of uts) {
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, '');
    }
    this.state.update((s) => {
      s.netns.push(...names);
      s.mounts.push(...uts);
    });
    this.state.flush();
    await addNetnsMany(names);
    loopbackUp(names.map((n) => netnsPath(n)));
    pods.forEach((p, i) => pinHostname(uts[i], p));
    return names.map((n) => ({ netns: netnsPath(n) }));
  }

  /** Many sandboxes gone at once: what runs in them stopped together, then one `ip` process for the namespaces. */
  async removeSandboxes(_node: string, pods: string[]): Promise<void> {
    const names = pods.map((p) => podNetns(this.topo.lab, p));
    const inodes = new Set(names.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
    await stopPids(pidsInNetns(inodes));
    await deleteNetnsMany(names);
    const uts = pods.map((p) => join(this.podRoot(p), 'uts'));
    unmountMany(uts.filter((f) => existsSync(f)));
    const gone = new Set(names);
    const unmounted = new Set(uts);
    this.state.update((s) => {
      s.netns = s.netns.filter((n) => !gone.has(n));
      s.mounts = s.mounts.filter((m) => !unmounted.has(m));
    });
  }

  /** A BPF filesystem mounted in the node's directory (recorded first); unmounted with the lab's other mounts. */
  async bpffs(node: string): Promise<string> {
    const dir = this.nodePath(node, '/sys/fs/bpf');
    if (isBpffs(dir)) return dir;
    this.state.update((s) => s.mounts.push(dir));
    await mountBpffs(dir);
    return dir;
  }

  async removeSandbox(_node: string, pod: string): Promise<void> {
    const name = podNetns(this.topo.lab, pod);
    const inode = netnsInode(netnsPath(name));
    if (inode) for (const pid of pidsInNetns(new Set([inode]))) await stopPid(pid);
    await deleteNetns(name);
    const uts = join(this.podRoot(pod), 'uts');
    await unmount(uts);
    this.state.update((s) => {
      s.netns = s.netns.filter((n) => n !== name);
      s.mounts = s.mounts.filter((m) => m !== uts);
    });
  }
}

async function unmount(path: string): Promise<void> {
  if (!existsSync(path)) return;
  await run(['umount', path], { allowFailure: true });
}

/** Mount points below `dir` (the UTS namespaces we pinned), from the kernel's own list. */
function mountsBelow(dir: string): string[] {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return lines.map((l) => l.split(' ')[4]).filter((m) => m && (m === dir || m.startsWith(dir + '/')));
}

/**
 * Remove everything a netns lab made: recorded processes, then anything still
 * living in its namespaces, then the namespaces, the pinned mounts and its directory.
 * Works from the state file and from names alone, so a lab killed mid-way is found too.
 */
export async function cleanNetnsLab(lab: string): Promise<void> {
  const sf = new StateFile(lab);
  const prefix = `${NAME_PREFIX}${lab}-`;
  const names = new Set([...sf.state.netns, ...listNetns().filter((n) => n.startsWith(prefix) && isOwnedBy(n, lab))]);
  // All at once (a thousand pods stopped one by one would each be waited for in turn): what
  // we recorded and is still ours, and whatever else lives in the lab's namespaces.
  const inodes = new Set([...names].map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
  await stopPids([...new Set([...stillOurs(sf.state.processes), ...pidsInNetns(inodes)])]);
  // Pods first, the underlay last: nothing is left holding a link to a removed namespace.
  for (const r of [0, 1, 2]) await deleteNetnsMany([...names].filter((n) => rank(n) === r));
  unmountMany(mountsBelow(labDir(lab)).reverse());
  rmSync(labDir(lab), { recursive: true, force: true });
}

/**
 * What a crash left with no state file: namespaces carrying the name prefix,
 * and whatever still runs in them. Returns the namespaces removed.
 */
export async function cleanNetnsOrphans(): Promise<string[]> {
  const orphans = listNetns().filter((n) => n.startsWith(NAME_PREFIX));
  const inodes = new Set(orphans.map((n) => netnsInode(netnsPath(n))).filter((i): i is number => i !== undefined));
  await Promise.all(pidsInNetns(inodes).map((pid) => stopPid(pid)));
  for (const n of orphans) await deleteNetns(n);
  return orphans.map((n) => `namespace ${n}`);
}

function rank(name: string): number {
  if (name.includes('-pod-')) return 0;
  if (name.endsWith('-underlay')) return 2;
  return 1;
}

/**
 * A namespace named cnilab-<lab>-… belongs to <lab> unless a longer lab name
 * also matches it (lab "a" must not take "a-b"'s namespaces).
 */
function isOwnedBy(netns: string, lab: string): boolean {
  const others = listLabs().filter((l) => l !== lab && l.startsWith(lab + '-'));
  return !others.some((o) => netns.startsWith(`${NAME_PREFIX}${o}-`));
}
