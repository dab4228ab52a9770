// The hosts backend: each node is a real machine, reached over ssh with the
// user's own client config (the inventory names the config, each node's Host
// and the interface that carries the underlay), one kept-open connection per
// machine. The node is the machine itself, as a VM is: its address on that
// interface is the lab's node address, its subnet the lab's underlay.
//
// The machine is not the lab's to keep: before anything is made there, cnilab
// reads its kernel state and the files labs write (src/net/host-snapshot.ts),
// and teardown removes what is new since, stops what cnilab started by PID,
// and leaves the host's own addresses, routes and default route as they were.
// cnilab's bundle (dist/, the native modules its agents load) and, where the
// machine has no suitable one, Node.js are copied over the connection into the
// lab's directory there (the same path as here); the commands sent name those
// copies in place of this machine's paths.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CommandError, type RunResult } from '../net/exec.js';
import { Ip } from '../net/ip.js';
import { formatCidr, networkCidr, parseCidr } from '../net/ipnet.js';
import { leftOver, parseSnapshot, restoreArgv, restoreCommands, snapshotArgv, type HostSnapshot } from '../net/host-snapshot.js';
import { NODE_INIT_SYSCTLS } from '../net/node-scripts.js';
import { ROOT } from '../lab/paths.js';
import { CannotRunHereError } from '../lab/not-here.js';
import { NAME_PREFIX, STATE_ROOT, labDir, readState, type HostNodeRecord, type LabState, type StateFile } from '../lab/state.js';
import { packagesOf, TOOLS } from '../lab/tools.js';
import type { CommandOptions, ExecOptions, Started, Topology } from './backend.js';
import { loadInventory } from './hosts-inventory.js';
import { NODE_DIRS, nodeInitArgv, removeSandboxArgv, shArgv, stopArgv } from './node-commands.js';
import { podNetns } from './netns.js';
import { RemoteNodeBackend } from './remote-node.js';
import { runCommand, sshArgv, sshExitArgv, type CommandRunner, type SshTarget } from './ssh.js';

/**
 * What of cnilab's tree a node runs: the bundle, and the modules its agents load at run time
 * (koffi, the one `external` in scripts/build.mjs, and its native library, a package of its own).
 */
export const BUNDLE_PATHS = ['dist', 'node_modules/koffi', 'node_modules/@koromix'];

/** The bundle's place on a host: inside the lab's directory, which is at the same path there as here. */
export function hostRoot(lab: string): string {
  return join(labDir(lab), 'cnilab');
}

/** The Node.js major version the bundle is built for: a host's own node must be at least this. */
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

const UNAME_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x' };

export function hostSsh(lab: string, sshConfig: string, rec: Pick<HostNodeRecord, 'host' | 'sudo'>): SshTarget {
  return { config: sshConfig, controlDir: join(labDir(lab), 'ssh'), host: rec.host, sudo: rec.sudo ?? false };
}

/** Paths of this machine's bundle and Node.js, as the host has them. */
export function pathMapper(lab: string, nodeBinary: string | undefined): { word: (w: string) => string; text: (t: string) => string } {
  const [from, to] = [`${ROOT}/`, `${hostRoot(lab)}/`];
  const text = (t: string) => t.replaceAll(from, to);
  return { text, word: (w) => (nodeBinary && w === process.execPath ? nodeBinary : text(w)) };
}

export class HostsBackend extends RemoteNodeBackend {
  readonly kind: string = 'hosts';
  /** The underlay is the machines' own network: pods never get addresses on it (macvlan is refused). */
  readonly foreignUnderlay: boolean = true;
  readonly nodeKernels = true;
  /** The lab's directory on a host is the host's own: its logs and pod files are read over the connection. */
  protected readonly labDirShared = false;
  /** Files of dist/bpf already on each host (objects compiled after the copy are sent before the next start). */
  private readonly sent = new Map<string, Set<string>>();

  constructor(
    topo: Topology,
    state: StateFile,
    inventory?: string,
    private readonly opts: { install?: boolean; runner?: CommandRunner } = {},
  ) {
    super(topo, state);
    if (!state.state.hosts) {
      if (!inventory) throw new Error('the hosts backend needs --inventory <file>: the machine of each node, by its Host in an ssh config (README: "Other backends")');
      const inv = loadInventory(inventory, topo.nodes.map((n) => n.name));
      const nodes = Object.fromEntries(Object.entries(inv.nodes).map(([name, n]) => [name, { host: n.host, interface: n.interface }]));
      state.state.hosts = { inventory: inv.file, sshConfig: inv.sshConfig, nodes };
    }
    applyTopology(topo, state.state.topology);
  }

  private get runner(): CommandRunner {
    return this.opts.runner ?? runCommand;
  }

  nodeLabel(node: string): string {
    return `${this.rec(node).host} (node ${node})`;
  }

  private rec(node: string): HostNodeRecord {
    const rec = this.state.state.hosts!.nodes[node];
    if (!rec) throw new Error(`no host for node ${node} in ${this.state.state.hosts!.inventory}`);
    return rec;
  }

  private ssh(node: string): SshTarget {
    return hostSsh(this.topo.lab, this.state.state.hosts!.sshConfig, this.rec(node));
  }

  private mapper(node: string) {
    return pathMapper(this.topo.lab, this.rec(node).node);
  }

  private recordNode(node: string, fields: Partial<HostNodeRecord>): void {
    this.state.update((s) => Object.assign(s.hosts!.nodes[node], fields));
  }

  async exec(node: string, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    const map = this.mapper(node);
    const env = opts.env && Object.fromEntries(Object.entries(opts.env).map(([k, v]) => [k, map.word(v)]));
    const r = await this.runner(sshArgv(this.ssh(node), argv.map(map.word), env), { input: opts.input === undefined ? undefined : map.text(opts.input) });
    if (r.exitCode === 255 && /^ssh:|Connection|Permission denied|Host key/m.test(r.stderr)) {
      throw new Error(`cannot reach ${this.rec(node).host} (node ${node}) over ssh with ${this.state.state.hosts!.sshConfig}: ${r.stderr.trim()}`);
    }
    if (r.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, r.exitCode, r.stderr || r.stdout);
    return r;
  }

  protected nodeCommand(node: string, argv: string[], opts: CommandOptions = {}): string[] {
    return sshArgv(this.ssh(node), argv.map(this.mapper(node).word), undefined, opts);
  }

  async start(node: string, name: string, argv: string[], opts: { env?: Record<string, string> } = {}): Promise<Started> {
    await this.sendNewObjects(node);
    return super.start(node, name, argv, opts);
  }

  async up(): Promise<void> {
    // The machines' own network carries what it carries; a lab's own bridge (VMs) carries the IPv6 underlay too.
    if (this.topo.underlayV6 && this.foreignUnderlay) throw new CannotRunHereError(`skipped: an IPv6 underlay (topology.underlayV6) is built on the netns and vagrant backends only, not on ${this.kind}`);
    try {
      mkdirSync(join(labDir(this.topo.lab), 'ssh'), { recursive: true });
      // Every host finishes (or fails) before any cleanup starts: none is still being changed while another is given back.
      const results = await Promise.allSettled(this.topo.nodes.map((n) => this.prepare(n.name)));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      this.resolveTopology(results.map((r) => (r as PromiseFulfilledResult<{ node: string; cidr: string }>).value));
      await this.checkUnderlay('The hosts reach each other on the interfaces the inventory names: check that they share that network.');
      this.state.update((s) => (s.status = 'up'));
    } catch (e) {
      const { unreachable } = await cleanHostsLab(this.topo.lab, this.runner);
      if (unreachable && e instanceof Error) e.message += `; and removing the lab again failed: ${unreachable}`;
      throw e;
    }
  }

  /** Everything before the lab's own work on one host; returns the address read from its interface. */
  private async prepare(node: string): Promise<{ node: string; cidr: string }> {
    const rec = this.rec(node);
    const who = await this.exec(node, ['id', '-u'], { allowFailure: true });
    if (who.exitCode !== 0) throw new Error(`cannot run commands on ${rec.host} (node ${node}): ${(who.stderr || who.stdout).trim()}`);
    if (who.stdout.trim() !== '0') {
      this.recordNode(node, { sudo: true });
      const sudo = await this.exec(node, ['true'], { allowFailure: true });
      if (sudo.exitCode !== 0) throw new Error(`the login on ${rec.host} (node ${node}) is not root and \`sudo -n\` refuses it: ${sudo.stderr.trim()}`);
    }
    await this.refuseOthers(node);
    const cidr = await this.readAddress(node);
    await this.provideTools(node);
    // From here on the host changes: first how it was, then what cnilab makes.
    const before = parseSnapshot((await this.exec(node, snapshotArgv(NODE_INIT_SYSCTLS))).stdout);
    this.recordNode(node, { before });
    if ((await this.exec(node, ['test', '-d', STATE_ROOT], { allowFailure: true })).exitCode !== 0) this.recordNode(node, { madeDirs: [STATE_ROOT] });
    await this.copyBundle(node);
    await this.exec(node, nodeInitArgv(NODE_DIRS, { keepDefaultRoute: true }));
    return { node, cidr };
  }

  /** A host with another lab on it (its namespaces, its directory, its CNI config) is not this lab's. */
  private async refuseOthers(node: string): Promise<void> {
    const script = [
      'ip netns list 2>/dev/null | cut -d" " -f1 | grep "^$1" | sed "s/^/namespace /"',
      '[ -d "$2" ] && ls -A "$2" | sed "s|^|lab directory $2/|"',
      '[ -e /etc/cni/net.d/10-cnilab.conflist ] && echo "CNI config /etc/cni/net.d/10-cnilab.conflist"',
      'true',
    ].join('\n');
    const found = (await this.exec(node, shArgv(script, NAME_PREFIX, STATE_ROOT))).stdout.trim();
    if (found) {
      throw new Error(
        `${this.rec(node).host} (node ${node}) already holds another lab's ${found.split('\n').join(', ')}: ` +
          'run `cnilab down` for that lab (on the machine that started it), or pick another host',
      );
    }
  }

  private async readAddress(node: string): Promise<string> {
    const { host, interface: dev } = this.rec(node);
    const links = await new Ip(this.node(node)).addrs(dev).catch(() => []);
    const inet = links[0]?.addr_info?.find((a) => a.family === 'inet');
    if (!links.length) throw new Error(`${host} (node ${node}) has no interface ${dev}, which the inventory ${this.state.state.hosts!.inventory} names`);
    if (!inet) throw new Error(`${dev} on ${host} (node ${node}) has no IPv4 address: the underlay is the network on that interface`);
    return `${inet.local}/${inet.prefixlen}`;
  }

  /** The node tools the host lacks: named, or installed with apt-get when asked (--install) and recorded for removal. */
  private async provideTools(node: string): Promise<void> {
    const tools = Object.keys(TOOLS).filter((t) => TOOLS[t].on.includes('node'));
    const script = 'PATH="$PATH:/usr/sbin:/sbin"; for t in "$@"; do case "$t" in /*) [ -e "$t" ];; *) command -v "$t" >/dev/null;; esac || echo "$t"; done';
    const missing = (await this.exec(node, shArgv(script, ...tools))).stdout.split('\n').filter(Boolean);
    if (!missing.length) return;
    const packages = packagesOf(missing);
    const host = this.rec(node).host;
    if (!this.opts.install) {
      throw new Error(`${host} (node ${node}) lacks ${missing.join(', ')}: install the Debian packages ${packages.join(' ')} there, or run with --install (cnilab installs them and removes them with the lab)`);
    }
    this.recordNode(node, { installed: packages });
    const apt = await this.exec(node, ['apt-get', 'install', '-y', '--no-install-recommends', ...packages], { env: { DEBIAN_FRONTEND: 'noninteractive' }, allowFailure: true });
    if (apt.exitCode !== 0) throw new Error(`apt-get install ${packages.join(' ')} on ${host} failed: ${apt.stderr.trim().split('\n').slice(-3).join(' ')}`);
  }

  /** cnilab's bundle over the connection (tar through ssh), and Node.js unless the host has a new enough one. */
  private async copyBundle(node: string): Promise<void> {
    const root = hostRoot(this.topo.lab);
    const probe = await this.exec(node, shArgv('uname -m; command -v node && node --version || true'), { allowFailure: true });
    const [arch, nodePath, version] = probe.stdout.trim().split('\n');
    let nodeBinary = nodePath;
    if (!nodePath || Number(/^v(\d+)/.exec(version ?? '')?.[1] ?? 0) < NODE_MAJOR) {
      if (arch !== UNAME_ARCH[process.arch]) throw new Error(`${this.rec(node).host} (node ${node}) is ${arch} and has no Node.js ${NODE_MAJOR} or newer: install one there (this machine's, for ${UNAME_ARCH[process.arch]}, cannot run on it)`);
      nodeBinary = join(root, 'bin', 'node');
    }
    const sources: [string, string[]][] = [[ROOT, BUNDLE_PATHS.filter((p) => existsSync(join(ROOT, p)))]];
    if (nodeBinary !== nodePath) sources.push([dirname(process.execPath), [basename(process.execPath)]]);
    await this.sendTar(node, root, sources[0]);
    if (sources[1]) await this.sendTar(node, join(root, 'bin'), sources[1]);
    this.recordNode(node, { node: nodeBinary });
    this.sent.set(node, new Set(this.bpfObjects()));
  }

  private bpfObjects(): string[] {
    const dir = join(ROOT, 'dist', 'bpf');
    return existsSync(dir) ? readdirSync(dir).map((f) => join('dist', 'bpf', f)) : [];
  }

  /** eBPF objects compiled here after the bundle went over (a datapath compiles them at install). */
  private async sendNewObjects(node: string): Promise<void> {
    const sent = this.sent.get(node);
    if (!sent) return;
    const fresh = this.bpfObjects().filter((f) => !sent.has(f));
    if (!fresh.length) return;
    await this.sendTar(node, hostRoot(this.topo.lab), [ROOT, fresh]);
    for (const f of fresh) sent.add(f);
  }

  /** `tar -c` here piped into `tar -x` there, over the node's shared connection. */
  private sendTar(node: string, dest: string, [dir, paths]: [string, string[]]): Promise<void> {
    const remote = sshArgv(this.ssh(node), shArgv('mkdir -p "$1" && tar -C "$1" -xf -', dest));
    return new Promise((resolve, reject) => {
      const tar = spawn('tar', ['-C', dir, '-cf', '-', ...paths], { stdio: ['ignore', 'pipe', 'pipe'] });
      const ssh = spawn(remote[0], remote.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      tar.stderr.on('data', (c) => (err += c));
      ssh.stderr.on('data', (c) => (err += c));
      tar.stdout.pipe(ssh.stdin);
      // ssh gone early (the host refused): its exit code says why, not the broken pipe.
      ssh.stdin.on('error', () => undefined);
      tar.on('error', reject);
      ssh.on('error', reject);
      ssh.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`copying ${paths.join(', ')} to ${this.rec(node).host}:${dest} failed (exit ${code}): ${err.trim()}`))));
    });
  }

  /** The underlay is the hosts' network: one subnet, read from the interfaces. */
  private resolveTopology(found: { node: string; cidr: string }[]): void {
    const nets = found.map((f) => ({ ...f, net: formatCidr(networkCidr(parseCidr(f.cidr)!)) }));
    const other = nets.find((n) => n.net !== nets[0].net);
    if (other) {
      throw new Error(`the hosts are on different networks (${nets.map((n) => `${n.node} ${n.cidr}`).join(', ')}): a lab's nodes share one underlay subnet`);
    }
    const topology = { underlay: nets[0].net, nodes: nets.map((n) => ({ name: n.node, address: n.cidr.split('/')[0], iface: this.rec(n.node).interface })) };
    this.state.update((s) => (s.topology = topology));
    applyTopology(this.topo, topology);
  }

  async down(): Promise<void> {
    const r = await cleanHostsLab(this.topo.lab, this.runner);
    if (r.unreachable) throw new Error(r.unreachable);
  }
}

/** The addresses and underlay a backend found, in place of the lab file's. */
export function applyTopology(topo: Topology, found: LabState['topology']): void {
  if (!found) return;
  topo.underlay = { subnet: found.underlay, prefix: parseCidr(found.underlay)!.prefix };
  for (const n of topo.nodes) {
    const f = found.nodes.find((x) => x.name === n.name);
    if (f) Object.assign(n, { address: f.address }, f.iface ? { iface: f.iface } : {});
  }
}

/**
 * Give every host of a lab back as it was, from the lab's state alone: stop
 * what cnilab started there by PID, remove the pod sandboxes, then everything
 * new since the snapshot taken before the lab, the lab's directory and the
 * packages cnilab installed; then close the connections. What could not be
 * removed is named.
 */
export async function cleanHostsLab(lab: string, runner: CommandRunner = runCommand): Promise<{ unreachable?: string }> {
  const state = readState(lab);
  const hosts = state?.hosts;
  const problems: string[] = [];
  if (state && hosts) {
    mkdirSync(join(labDir(lab), 'ssh'), { recursive: true });
    await Promise.all(
      Object.entries(hosts.nodes).map(async ([node, rec]) => {
        const t = hostSsh(lab, hosts.sshConfig, rec);
        const on = async (argv: string[]) => {
          const r = await runner(sshArgv(t, argv), {});
          if (r.exitCode === 255) throw new Error(`cannot reach ${rec.host}: ${r.stderr.trim()}`);
          return r;
        };
        try {
          for (const p of state.processes.filter((p) => p.node === node)) await on(stopArgv(p.pid, p.startTime));
          for (const pod of state.pods.filter((p) => p.node === node)) await on(removeSandboxArgv(podNetns(lab, pod.name), pod.name));
          if (rec.before) await on(restoreArgv(restoreCommands(rec.before, await snapshot(on))));
          await on(shArgv('rm -rf --one-file-system "$1"; shift; for d in "$@"; do rmdir "$d" 2>/dev/null; done; true', labDir(lab), ...(rec.madeDirs ?? [])));
          if (rec.installed?.length) await on(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'purge', '-y', ...rec.installed]);
          const left = rec.before ? leftOver(rec.before, await snapshot(on)) : [];
          if (left.length) problems.push(`${rec.host} (node ${node}) still has ${left.join(', ')}`);
        } catch (e) {
          if (rec.before || state.processes.some((p) => p.node === node)) problems.push(`${rec.host} (node ${node}): ${(e as Error).message}; what lab ${lab} made there is left`);
        }
        await runner(sshExitArgv(t), {}).catch(() => undefined);
      }),
    );
  }
  rmSync(labDir(lab), { recursive: true, force: true });
  return problems.length ? { unreachable: problems.join('; ') } : {};
}

async function snapshot(on: (argv: string[]) => Promise<RunResult>): Promise<HostSnapshot> {
  return parseSnapshot((await on(snapshotArgv(NODE_INIT_SYSCTLS))).stdout);
}
