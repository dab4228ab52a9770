// Reading a running lab from the kernel: in every node's and pod's namespace,
// links with addresses, routes, neighbours, FDB and the namespace ids (through
// src/net/ip.ts), plus which process holds each TUN device (src/net/proc.ts).
import { Ip } from '../net/ip.js';
import { natRules } from '../net/iptables.js';
import { bpfAttachments } from '../net/bpf.js';
import { netnsInode } from '../net/netns.js';
import { tunOwners } from '../net/proc.js';
import { pidsInNetns } from '../lab/processes.js';
import type { LabState } from '../lab/state.js';
import type { Backend, Target } from '../topologies/backend.js';
import { kindOf } from '../net/link-kinds.js';
import { podNetns } from '../topologies/netns.js';
import { buildModel, type NetModel, type RawNamespace } from './model.js';
import { readServices } from './services.js';

export interface InspectTarget {
  kind: 'node' | 'pod';
  name: string;
  node: string;
  /** A pod's network namespace as its node names it: a node's veth names it as its peer's (ip netns list-id). */
  netnsName?: string;
}

/** The node or pod as a Target of its backend. */
export function targetOf(backend: Backend, t: InspectTarget): Target {
  return t.kind === 'pod' ? backend.pod(t.node, t.name) : backend.node(t.node);
}

/** Everything the kernel says about one namespace, in parallel `ip -json` calls (on the node itself where the namespace is not local). */
export async function readNamespace(backend: Backend, t: InspectTarget): Promise<RawNamespace> {
  const target = targetOf(backend, t);
  const netns = target.netns;
  const ip = new Ip(target);
  const [links, routes, routes6, neighbours, fdb, nsids, nat, bpf] = await Promise.all([
    ip.linksWithAddrs(),
    ip.routes(),
    ip.routes6().catch(() => []), // a kernel without IPv6 answers with an error
    ip.neighbours(),
    ip.fdbAll(),
    ip.netnsIds(),
    t.kind === 'node' ? natRules(target) : Promise.resolve(undefined),
    t.kind === 'node' ? bpfAttachments(target) : Promise.resolve([]),
  ]);
  const { netnsName, ...who } = t;
  const raw: RawNamespace = { ...who, netns: netns ?? netnsName ?? target.label, links, routes, routes6, neighbours, fdb, nsids, ...(nat ? { nat } : {}), ...(bpf.length ? { bpf } : {}) };
  if (links.some((l) => kindOf(l) === 'tun')) {
    // Who holds a TUN device is read from /proc: possible where the namespace is on this machine.
    const inode = netns ? netnsInode(netns) : undefined;
    raw.tunOwners = inode === undefined ? [] : tunOwners(pidsInNetns(new Set([inode])));
  }
  return raw;
}

/** The lab's nodes (in topology order) and its pods. */
export function targetsOf(nodes: string[], state: LabState): InspectTarget[] {
  return [...nodes.map((n) => ({ kind: 'node' as const, name: n, node: n })), ...state.pods.map((p) => ({ kind: 'pod' as const, name: p.name, node: p.node, netnsName: podNetns(state.lab, p.name) }))];
}

export async function inspectRaw(backend: Backend, targets: InspectTarget[]): Promise<RawNamespace[]> {
  return Promise.all(targets.map((t) => readNamespace(backend, t)));
}

/** The model of a running lab, from the kernel. */
export async function inspectLab(backend: Backend, state: LabState, nodes: string[]): Promise<NetModel> {
  const [raw, services] = await Promise.all([inspectRaw(backend, targetsOf(nodes, state)), readServices(backend, nodes)]);
  const model = buildModel(raw, { lab: state.lab, backend: backend.kind });
  if (services) model.services = services;
  return model;
}
