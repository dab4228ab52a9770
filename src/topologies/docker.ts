// The docker backend: each node is a container from cnilab's node image, on a
// user-defined Docker network that is the underlay (the lab's own subnet and
// addresses). Pod sandboxes are network namespaces inside the node container,
// as a container runtime on a real node makes them. Every container and
// network carries the lab's labels, so `clean` finds them with no state file.
//
// Nothing of a lab is addressed or routed in the root namespace: the network's
// bridge gets no address (inhibit_ipv4), containers get no default route, and
// the host's Node.js and cnilab bundle are mounted read-only at their own paths
// so the plugins and agents run unchanged.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { CommandError, type RunResult } from '../net/exec.js';
import { parseCidr, parseIp, formatIp, network as networkOf, broadcast, overlaps } from '../net/ipnet.js';
import { NAME_PREFIX, labDir, readState, type StateFile } from '../lab/state.js';
import { ROOT } from '../lab/paths.js';
import type { CommandOptions, ExecOptions, Topology } from './backend.js';
import { connectDocker, dockerHost, engineAnswers, engineSocketExists } from './docker-engine.js';
import { ensureNodeImage, IMAGE_LABEL } from './docker-image.js';
import { NODE_DIRS, nodeInitArgv } from './node-commands.js';
import { RemoteNodeBackend } from './remote-node.js';
import { podNetns } from './netns.js';
import { CannotRunHereError } from '../lab/not-here.js';

export const LAB_LABEL = 'cnilab.lab';
export const PREFIX_LABEL = 'cnilab.prefix';
export const NODE_LABEL = 'cnilab.node';

export function containerName(lab: string, node: string): string {
  return `${NAME_PREFIX}${lab}-${node}`;
}
export function networkName(lab: string): string {
  return `${NAME_PREFIX}${lab}-underlay`;
}
export function labLabels(lab: string): Record<string, string> {
  return { [LAB_LABEL]: lab, [PREFIX_LABEL]: NAME_PREFIX };
}

/**
 * Docker insists on a gateway address in the subnet and keeps it for itself;
 * take the highest host address no node uses, so the lessons' addresses stay free.
 */
export function gatewayFor(subnet: string, used: string[]): string {
  const c = parseCidr(subnet);
  if (!c) throw new Error(`underlay ${subnet} is not a CIDR`);
  const taken = new Set(used.map((a) => parseIp(a)));
  for (let ip = broadcast(c) - 1; ip > networkOf(c); ip--) if (!taken.has(ip)) return formatIp(ip);
  throw new Error(`underlay ${subnet} has no address left for Docker's gateway`);
}

/** The network create request: the lab's subnet, internal, no address on the host's bridge. */
export function networkSpec(topo: Topology): Docker.NetworkCreateOptions {
  return {
    Name: networkName(topo.lab),
    Driver: 'bridge',
    Internal: true,
    CheckDuplicate: true,
    IPAM: { Driver: 'default', Config: [{ Subnet: topo.underlay.subnet, Gateway: gatewayFor(topo.underlay.subnet, topo.nodes.map((n) => n.address)) }] },
    Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true', 'com.docker.network.driver.mtu': '1500' },
    Labels: labLabels(topo.lab),
  };
}

/**
 * The container create request for one node. `--privileged` fails where
 * CAP_SYS_RESOURCE is missing; every other capability, no seccomp filter and a
 * writable /proc/sys give a node what it needs (links, namespaces, sysctls, tcpdump).
 */
/** A container that acts as a whole machine on `network`: every capability, its own sysctls, TUN devices. */
export function machineHostConfig(network: string): Docker.HostConfig {
  return {
    NetworkMode: network,
    Init: true,
    CapAdd: ['ALL'],
    CapDrop: ['SYS_RESOURCE'],
    SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
    // The API's form of the CLI's `--security-opt systempaths=unconfined`: /proc/sys writable.
    MaskedPaths: [],
    ReadonlyPaths: [],
    // TUN devices (flannel's UDP backend, wireguard-go) open /dev/net/tun, which a container only has when given.
    Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
  };
}

export function nodeContainerSpec(topo: Topology, node: string, image: string, stateDir: string, nodeBinary = process.execPath): Docker.ContainerCreateOptions {
  const spec = topo.nodes.find((n) => n.name === node);
  if (!spec) throw new Error(`no node ${node} in lab ${topo.lab}`);
  // The bundle, and node_modules for what bundles load at run time (native modules such as koffi).
  const [dist, modules] = [join(ROOT, 'dist'), join(ROOT, 'node_modules')];
  const binds = [`${dist}:${dist}:ro`, `${modules}:${modules}:ro`, `${nodeBinary}:${nodeBinary}:ro`, `${stateDir}:${stateDir}`];
  if (nodeBinary !== '/usr/local/bin/node') binds.push(`${nodeBinary}:/usr/local/bin/node:ro`);
  return {
    name: containerName(topo.lab, node),
    Hostname: node,
    Image: image,
    Cmd: ['sleep', 'infinity'],
    Labels: { ...labLabels(topo.lab), [NODE_LABEL]: node },
    HostConfig: { ...machineHostConfig(networkName(topo.lab)), Binds: binds },
    NetworkingConfig: { EndpointsConfig: { [networkName(topo.lab)]: { IPAMConfig: { IPv4Address: spec.address } } } },
  };
}

/**
 * Run a command in a container to completion: stdout and stderr demultiplexed
 * from Docker's stream, stdin fed when given, and the exit code read back.
 */
export async function dockerExec(container: Docker.Container, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
  const withInput = opts.input !== undefined;
  const exec = await container.exec({
    Cmd: argv,
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: withInput,
  });
  const stream = (await exec.start({ hijack: true, stdin: withInput })) as NodeJS.ReadWriteStream & { destroy(): void };
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough().on('data', (c: Buffer) => out.push(c));
  const stderr = new PassThrough().on('data', (c: Buffer) => err.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  container.modem.demuxStream(stream, stdout, stderr);
  if (withInput) stream.end(opts.input!);
  await ended;
  let info = await exec.inspect();
  // The stream can close a moment before the engine has recorded the exit.
  for (let i = 0; info.Running && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 5));
    info = await exec.inspect();
  }
  const result = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), exitCode: info.ExitCode ?? 127 };
  if (result.exitCode !== 0 && !opts.allowFailure) throw new CommandError(argv, result.exitCode, result.stderr || result.stdout);
  return result;
}

export class DockerBackend extends RemoteNodeBackend {
  readonly kind = 'docker';
  private client?: Promise<Docker>;

  constructor(topo: Topology, state: StateFile, host = state.state.docker?.host ?? dockerHost()) {
    super(topo, state);
    if (!state.state.docker) state.state.docker = { host, containers: [] };
  }

  private docker(): Promise<Docker> {
    this.client ??= connectDocker(this.state.state.docker!.host);
    return this.client;
  }

  private async container(node: string): Promise<Docker.Container> {
    return (await this.docker()).getContainer(containerName(this.topo.lab, node));
  }

  async up(): Promise<void> {
    if (this.topo.underlayV6) throw new CannotRunHereError(`skipped: an IPv6 underlay (topology.underlayV6) is built on the netns and vagrant backends only, not on ${this.kind}`);
    const { lab, nodes } = this.topo;
    const host = this.state.state.docker!.host;
    try {
      const docker = await this.docker();
      if (!(await engineAnswers(docker))) {
        throw new Error(`no Docker engine answers at ${host}: start dockerd, or point DOCKER_HOST at one (README: "Other backends")`);
      }
      const image = await ensureNodeImage(docker, (m) => process.stderr.write(`${m}\n`));
      const spec = networkSpec(this.topo);
      await this.refuseSubnetClash();
      this.state.update((s) => (s.docker!.network = spec.Name));
      await docker.createNetwork(spec);
      await Promise.all(
        nodes.map(async (n) => {
          this.state.update((s) => s.docker!.containers.push(containerName(lab, n.name)));
          const c = await docker.createContainer(nodeContainerSpec(this.topo, n.name, image, this.state.dir));
          await c.start();
          const pid = (await c.inspect()).State.Pid;
          this.state.update((s) => (s.docker!.pids = { ...s.docker!.pids, [n.name]: pid }));
          await dockerExec(c, nodeInitArgv(NODE_DIRS));
        }),
      );
      await this.checkUnderlay(
        `The Docker network ${networkName(lab)} is a bridge in the host's namespace: with br_netfilter loaded ` +
          "(net.bridge.bridge-nf-call-iptables=1) its traffic passes the host's iptables FORWARD chain, and a DROP policy there " +
          '(a dockerd started with its defaults sets one) blocks the underlay.',
      );
      this.state.update((s) => (s.status = 'up'));
    } catch (e) {
      await this.down();
      throw e;
    }
  }

  /** One engine keeps its networks' subnets apart: say which network holds the underlay's, before making anything. */
  private async refuseSubnetClash(): Promise<void> {
    const wanted = parseCidr(this.topo.underlay.subnet)!;
    for (const n of await (await this.docker()).listNetworks()) {
      const clash = (n.IPAM?.Config ?? []).some((c) => {
        const have = c.Subnet ? parseCidr(c.Subnet) : undefined;
        return have !== undefined && overlaps(have, wanted);
      });
      if (!clash) continue;
      const owner = n.Labels?.[LAB_LABEL] ? ` (lab ${n.Labels[LAB_LABEL]})` : '';
      throw new Error(
        `the Docker network ${n.Name}${owner} already uses ${n.IPAM!.Config![0].Subnet}, which overlaps the underlay ${this.topo.underlay.subnet} of lab ${this.topo.lab}: ` +
          'one engine keeps its networks apart, so run these labs one after the other, or on another engine (DOCKER_HOST)',
      );
    }
  }

  async down(): Promise<void> {
    await cleanDockerLab(this.topo.lab);
  }

  async exec(node: string, argv: string[], opts: ExecOptions = {}): Promise<RunResult> {
    return dockerExec(await this.container(node), argv, opts);
  }

  /**
   * The engine is on this machine, so a node's namespaces are reachable from here through
   * its container's first process: the kernel's view there is read without a docker exec each time.
   */
  netnsPath(node: string, pod?: string): string | undefined {
    const pid = this.state.state.docker?.pids?.[node];
    if (!pid || !existsSync(`/proc/${pid}/ns/net`)) return undefined;
    return pod ? `/proc/${pid}/root/run/netns/${podNetns(this.topo.lab, pod)}` : `/proc/${pid}/ns/net`;
  }

  /** Through Debian's docker CLI (docker.io), at the engine this lab lives on. */
  protected nodeCommand(node: string, argv: string[], opts: CommandOptions = {}): string[] {
    return ['docker', '-H', this.state.state.docker!.host, 'exec', '-i', ...(opts.tty ? ['-t'] : []), containerName(this.topo.lab, node), ...argv];
  }
}

export interface DockerCleanReport {
  containers: string[];
  networks: string[];
  /** Set when the engine could not be reached: what may be left there. */
  unreachable?: string;
}

/** Containers and networks that carry a lab's labels (any lab of this prefix when `lab` is undefined). */
async function labelled(docker: Docker, lab?: string): Promise<{ containers: Docker.ContainerInfo[]; networks: Docker.NetworkInspectInfo[] }> {
  const label = [`${PREFIX_LABEL}=${NAME_PREFIX}`, ...(lab ? [`${LAB_LABEL}=${lab}`] : [])];
  const filters = JSON.stringify({ label });
  const [containers, networks] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listNetworks({ filters })]);
  return { containers, networks };
}

async function removeLabelled(docker: Docker, lab?: string): Promise<DockerCleanReport> {
  const { containers, networks } = await labelled(docker, lab);
  // Removing a container kills everything in it: the node's agents, pods and their sandboxes.
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(notFound)));
  await Promise.all(networks.map((n) => docker.getNetwork(n.Id).remove().catch(notFound)));
  return { containers: containers.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, '')), networks: networks.map((n) => n.Name) };
}

function notFound(e: { statusCode?: number }): void {
  if (e.statusCode !== 404) throw e;
}

/**
 * Remove everything a docker lab made: its containers and network, found by the
 * lab's labels on the engine its state names, then its directory. An engine that
 * is gone took its containers with it, or keeps them labelled for a later clean.
 */
export async function cleanDockerLab(lab: string): Promise<DockerCleanReport> {
  const host = readState(lab)?.docker?.host ?? dockerHost();
  let report: DockerCleanReport = { containers: [], networks: [] };
  const docker = engineSocketExists(host) ? await connectDocker(host) : undefined;
  if (docker && (await engineAnswers(docker))) report = await removeLabelled(docker, lab);
  else report.unreachable = `the Docker engine at ${host} does not answer; containers labelled ${LAB_LABEL}=${lab} may remain there`;
  rmSync(labDir(lab), { recursive: true, force: true });
  return report;
}

/**
 * What a crash left on the current engine with no state file: containers and
 * networks carrying this prefix's labels. Node images no container uses go too
 * (the tarball they came from stays cached).
 */
export async function cleanDockerOrphans(): Promise<DockerCleanReport> {
  const host = dockerHost();
  if (!engineSocketExists(host)) return { containers: [], networks: [] };
  const docker = await connectDocker(host);
  if (!(await engineAnswers(docker, 1000))) return { containers: [], networks: [] };
  const report = await removeLabelled(docker);
  const images = await docker.listImages({ filters: JSON.stringify({ label: [`${IMAGE_LABEL}=node`] }) });
  // The engine refuses to remove an image a container (of any lab) still uses: that one stays.
  await Promise.all(images.map((i) => docker.getImage(i.Id).remove().catch(() => undefined)));
  return report;
}
