// What a result must record besides the figures: the interfaces each pair's
// packets cross (MTU, offloads), the nodes' links for the topology diagram,
// the kernel, the tool versions and the commit. A wrong MTU costs more than
// encapsulation, so the path is read from the kernel, not from the lab file.
import { isAttached, kindOf } from '../net/link-kinds.js';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { arch, cpus, release } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Backend } from '../topologies/backend.js';
import { cnilabVersion, ROOT } from '../lab/paths.js';
import type { Lab } from '../lab/lab-file.js';
import type { PodRecord } from '../lab/state.js';
import { endpointLabel, runOn } from './endpoint.js';
import type { Endpoint, PlannedPair } from './plan.js';
import type { BenchResult, Hop } from './results.js';
import { Ip } from '../net/ip.js';

interface IpLink {
  ifname: string;
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string };
  link_type?: string;
  addr_info?: { family: string; local: string }[];
  num_tx_queues?: number;
  num_rx_queues?: number;
}

/** The offloads that decide how much work a byte costs, by ethtool's names. */
const OFFLOADS: Record<string, string> = {
  'tcp-segmentation-offload': 'tso',
  'generic-segmentation-offload': 'gso',
  'generic-receive-offload': 'gro',
  'tx-checksumming': 'txCsum',
  'rx-checksumming': 'rxCsum',
  'scatter-gather': 'sg',
};

/** `ethtool -k` output → { tso: true, gro: false, … } for the offloads above. */
export function parseOffloads(text: string): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z-]+): (on|off)/.exec(line);
    if (m && OFFLOADS[m[1]]) out[OFFLOADS[m[1]]] = m[2] === 'on';
  }
  return out;
}


/** Reads the kernel's view of each endpoint once and answers path questions from it. */
export class PathProbe {
  private links = new Map<string, Promise<IpLink[]>>();
  private offloads = new Map<string, Promise<Record<string, boolean> | undefined>>();
  ethtoolMissing = false;
  /** Nodes whose routing table could not name a hop (see nodeEgress). */
  readonly unrouted = new Set<string>();

  constructor(readonly backend: Backend) {}

  private targetOf(ep: Endpoint) {
    return ep.pod ? this.backend.pod(ep.node, ep.pod) : this.backend.node(ep.node);
  }

  linksOf(ep: Endpoint): Promise<IpLink[]> {
    const key = endpointLabel(ep);
    if (!this.links.has(key)) {
      this.links.set(key, new Ip(this.targetOf(ep)).linksWithAddrs() as Promise<IpLink[]>);
    }
    return this.links.get(key)!;
  }

  private offloadsOf(ep: Endpoint, ifname: string): Promise<Record<string, boolean> | undefined> {
    const key = `${endpointLabel(ep)}/${ifname}`;
    if (!this.offloads.has(key)) {
      this.offloads.set(
        key,
        runOn(this.backend, ep, ['ethtool', '-k', ifname], { allowFailure: true }).then((r) => {
          if (r.exitCode !== 0) {
            if (/not found|No such file|exec/.test(r.stderr)) this.ethtoolMissing = true;
            return undefined;
          }
          return parseOffloads(r.stdout);
        }),
      );
    }
    return this.offloads.get(key)!;
  }

  private async hop(ep: Endpoint, ifname: string): Promise<Hop> {
    const link = (await this.linksOf(ep)).find((l) => l.ifname === ifname);
    const where = ep.pod ? `${ep.pod} (${ep.node})` : ep.node;
    const offloads = await this.offloadsOf(ep, ifname);
    // Queues decide how many CPUs can share an interface's packets.
    const queues = link?.num_tx_queues !== undefined && link.num_rx_queues !== undefined ? { queues: { tx: link.num_tx_queues, rx: link.num_rx_queues } } : {};
    return { where, ifname, kind: link ? kindOf(link) : 'unknown', mtu: link?.mtu ?? 0, ...(offloads ? { offloads } : {}), ...queues };
  }

  /** The interface an endpoint sends to `ip` from. */
  private async egress(ep: Endpoint, ip: string): Promise<string> {
    const dev = await this.routeDev(ep, ip);
    if (!dev) throw new Error(`${endpointLabel(ep)} has no route to ${ip}`);
    return dev;
  }

  /**
   * A node's interface towards `ip`, or undefined when its routing table has no
   * route: a datapath that steers packets itself (eBPF redirects) never asks it.
   * The path then leaves that hop out, and a note says so.
   */
  private async nodeEgress(node: Endpoint, ip: string): Promise<string | undefined> {
    const dev = await this.routeDev(node, ip);
    if (!dev) this.unrouted.add(`${node.node} has no route to ${ip}: its datapath steers these packets past the routing table, so the path leaves that hop out`);
    return dev;
  }

  private async routeDev(ep: Endpoint, ip: string): Promise<string | undefined> {
    const answer = await new Ip(this.targetOf(ep)).routeGet(ip).catch(() => undefined);
    return answer?.dev;
  }

  /** The interface that holds an endpoint's own address (for a node: its uplink). */
  private async owner(ep: Endpoint): Promise<string> {
    const link = (await this.linksOf(ep)).find((l) => l.addr_info?.some((a) => a.local === ep.ip));
    return link?.ifname ?? 'eth0';
  }

  /**
   * The interfaces from client to server: the client's egress, then (for a pod)
   * its node's egress, the node's underlay link when the pair crosses nodes,
   * the server node's link towards the pod, and the server's own interface.
   */
  async path(pair: PlannedPair, nodeAddress: (node: string) => string): Promise<Hop[]> {
    const { client, server } = pair;
    const first = await this.hop(client, await this.egress(client, server.ip));
    const last = await this.hop(server, await this.owner(server));
    const hops: Hop[] = [first];
    const clientNode: Endpoint = { node: client.node, ip: nodeAddress(client.node) };
    const serverNode: Endpoint = { node: server.node, ip: nodeAddress(server.node) };
    const crossing = pair.kind === 'cross-node';
    if (client.pod && isAttached(first.kind)) {
      // A macvlan pod sends straight out of its node's uplink: the node's routes never see it.
      hops.push(await this.hop(clientNode, await this.owner(clientNode)));
    } else if (client.pod) {
      const dev = await this.nodeEgress(clientNode, server.ip);
      if (dev) hops.push(await this.hop(clientNode, dev));
      if (crossing) {
        const under = await this.egress(clientNode, serverNode.ip);
        if (under !== dev) hops.push(await this.hop(clientNode, under));
      }
    }
    if (server.pod && crossing) {
      // The server node's link towards the pod; for a macvlan pod, the uplink it hangs off.
      const dev = isAttached(last.kind) ? await this.owner(serverNode) : await this.nodeEgress(serverNode, server.ip);
      if (dev) hops.push(await this.hop(serverNode, dev));
    }
    hops.push(last);
    return hops;
  }

  /** A node's links worth drawing: everything but loopback and the pods' veth ends (those carry no IPv4 address). */
  async nodeLinks(node: Endpoint): Promise<BenchResult['topology']['nodes'][number]['links']> {
    return (await this.linksOf(node))
      .filter((l) => kindOf(l) !== 'loopback' && (kindOf(l) !== 'veth' || l.addr_info?.some((a) => a.family === 'inet')))
      .map((l) => ({ ifname: l.ifname, kind: kindOf(l), mtu: l.mtu, ...(l.master ? { master: l.master } : {}) }));
  }
}

export async function topologyOf(probe: PathProbe, lab: Lab, pods: PodRecord[]): Promise<BenchResult['topology']> {
  return {
    underlay: lab.topology.underlay,
    ...(lab.topology.underlayV6 ? { underlayV6: lab.topology.underlayV6 } : {}),
    nodes: await Promise.all(
      lab.topology.nodes.map(async (n) => ({ name: n.name, address: n.address, ...(n.addressV6 ? { addressV6: n.addressV6 } : {}), links: await probe.nodeLinks({ node: n.name, ip: n.address }) })),
    ),
    pods: pods.filter((p) => p.ip).map((p) => ({ name: p.name, node: p.node, ip: p.ip!, ...(p.ip6 ? { ip6: p.ip6 } : {}) })),
  };
}

async function firstLine(cmd: string, args: string[]): Promise<string | undefined> {
  const r = await execa(cmd, args, { reject: false, all: true });
  return r.exitCode === 0 ? r.all?.split('\n').find((l) => l.trim())?.trim() : undefined;
}

/** Versions of everything that shapes the figures. */
export async function toolVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = { cnilab: cnilabVersion(), node: process.version };
  const probes: [string, string, string[]][] = [
    ['iperf3', 'iperf3', ['--version']],
    ['sockperf', 'sockperf', ['--version']],
    ['ping', 'ping', ['-V']],
    ['ethtool', 'ethtool', ['--version']],
  ];
  for (const [name, cmd, args] of probes) {
    const line = await firstLine(cmd, args);
    if (line) out[name] = line.replace(/\x1b\[[0-9;]*m/g, '');
  }
  return out;
}

/** The commit the figures were measured at; dirty when the work tree had changes. */
export async function gitCommit(): Promise<BenchResult['git']> {
  const head = await execa('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { reject: false });
  if (head.exitCode !== 0) return undefined;
  const status = await execa('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { reject: false });
  return { commit: head.stdout.trim(), dirty: status.stdout.trim() !== '' };
}

/** What the machine is, as far as it shapes figures; `class` groups runs that may be compared. */
export function hostInfo(backend: string): Pick<BenchResult['host'], 'kernel' | 'arch' | 'cpus' | 'cpuModel' | 'governor' | 'class'> {
  const cpuModel = cpus()[0]?.model.trim() || 'unknown';
  return { kernel: release(), arch: arch(), cpus: cpus().length, cpuModel, governor: governor(), class: `${cpuModel} ×${cpus().length} ${arch()} ${backend}` };
}

/** The CPUs' frequency governors ("performance", "powersave"…), or "none" where there is no cpufreq (most VMs). */
export function governor(): string {
  const dir = '/sys/devices/system/cpu';
  const found = new Set<string>();
  for (const cpu of readdirSync(dir).filter((d) => /^cpu\d+$/.test(d))) {
    const f = join(dir, cpu, 'cpufreq/scaling_governor');
    if (existsSync(f)) found.add(readFileSync(f, 'utf8').trim());
  }
  return found.size ? [...found].sort().join(',') : 'none';
}

/** CPU time counters from /proc/stat and NET_RX softirqs per CPU from /proc/softirqs: read before and after a run. */
export interface CpuCounters {
  busy: number;
  total: number;
  netRx: number[];
}

export function cpuCounters(): CpuCounters {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const netRx = /^\s*NET_RX:(.*)$/m.exec(readFileSync('/proc/softirqs', 'utf8'))?.[1].trim().split(/\s+/).map(Number) ?? [];
  return { busy: total - f[3] - f[4], total, netRx };
}

export function busyBetween(a: CpuCounters, b: CpuCounters): { busyPct: number; netRxSoftirqs: number[] } {
  return { busyPct: b.total > a.total ? (100 * (b.busy - a.busy)) / (b.total - a.total) : 0, netRxSoftirqs: b.netRx.map((v, i) => v - (a.netRx[i] ?? 0)) };
}

/** The lab file as measured: path (relative to the project when inside it), content and SHA-256. */
export function labFileRecord(file: string): NonNullable<BenchResult['labFile']> {
  const content = readFileSync(file, 'utf8');
  const rel = file.startsWith(`${ROOT}/`) ? file.slice(ROOT.length + 1) : file;
  return { path: rel, content, sha256: createHash('sha256').update(content).digest('hex') };
}
