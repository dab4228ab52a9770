// Installing the macvlan underlay on a lab. Pods take addresses on the node
// network itself: the lab's podCIDR is a range of the underlay kept free for
// pods, split into one slice (subnetLen) per node so no address is handed out
// twice. Each node gets a shim, a macvlan of its own on the same parent: macvlan
// children cannot talk to their parent device, but they can talk to a sibling.
// The shim takes the first address of the node's slice; the node routes its
// slice through it, and each pod routes the node's own address through it.
import type { Backend, NodeSpec } from '../../topologies/backend.js';
import { broadcast, contains, formatCidr, formatIp, network, parseCidr, parseIp, subnet } from '../../net/ipnet.js';
import { CONF_DIR, type ConfList } from '../../cni/conflist.js';
import type { Lab } from '../../lab/lab-file.js';
import { Ip } from '../../net/ip.js';

/** The node device the pods' macvlans hang off, and the name of each node's shim. */
export const UNDERLAY_DEVICE = 'eth0';
export const SHIM_DEVICE = 'macvlan-shim';

export interface MacvlanSlice {
  node: string;
  /** The node's part of the pod range, e.g. 192.168.10.64/28. */
  slice: string;
  /** The shim's address: the first usable one of the slice. */
  shim: string;
  /** Pod addresses: the rest of the slice. */
  rangeStart: string;
  rangeEnd: string;
}

export class PodRangeError extends Error {
  constructor(
    readonly field: 'podCIDR' | 'subnetLen',
    message: string,
  ) {
    super(message);
    this.name = 'PodRangeError';
  }
}

/**
 * Split the pod range into one slice per node. Pure: the lab file is checked
 * with it, and the installer uses it. Addresses the underlay cannot give a host
 * (its network and broadcast address) are left out of a slice.
 */
export function splitPodRange(underlayText: string, podRangeText: string, sliceLen: number, nodes: NodeSpec[]): MacvlanSlice[] {
  const underlay = parseCidr(underlayText);
  const range = parseCidr(podRangeText);
  if (!underlay) throw new PodRangeError('podCIDR', `the underlay "${underlayText}" is not a CIDR`);
  if (!range) throw new PodRangeError('podCIDR', `"${podRangeText}" is not a CIDR`);
  if (range.prefix < underlay.prefix || !contains(underlay, network(range))) {
    throw new PodRangeError('podCIDR', `macvlan pods live on the node network: ${podRangeText} must be a range inside the underlay ${underlayText}`);
  }
  if (sliceLen < range.prefix) throw new PodRangeError('subnetLen', `/${sliceLen} is larger than the pod range ${podRangeText}`);
  if (sliceLen > 30) throw new PodRangeError('subnetLen', `/${sliceLen} leaves no room for a shim and a pod; use /30 or larger`);
  const slices = 2 ** (sliceLen - range.prefix);
  if (nodes.length > slices) {
    throw new PodRangeError('subnetLen', `${podRangeText} holds ${slices} slices of /${sliceLen}, but the lab has ${nodes.length} nodes`);
  }
  for (const n of nodes) {
    const ip = parseIp(n.address);
    if (ip !== undefined && contains(range, ip)) {
      throw new PodRangeError('podCIDR', `node ${n.name}'s address ${n.address} lies inside the pod range ${podRangeText}; keep node addresses out of it`);
    }
  }
  return nodes.map((n, i) => {
    const s = subnet(range, sliceLen, i);
    const first = Math.max(network(s), network(underlay) + 1);
    const last = Math.min(broadcast(s), broadcast(underlay) - 1);
    if (last - first < 1) throw new PodRangeError('subnetLen', `the slice ${formatCidr(s)} for ${n.name} has no room for a shim and a pod`);
    return { node: n.name, slice: formatCidr(s), shim: formatIp(first), rangeStart: formatIp(first + 1), rangeEnd: formatIp(last) };
  });
}

export function macvlanConfList(backend: Backend, lab: Lab, node: NodeSpec, slice: MacvlanSlice): ConfList {
  return {
    cniVersion: '1.0.0',
    name: 'macvlan',
    plugins: [
      {
        type: 'macvlan',
        master: UNDERLAY_DEVICE,
        mode: 'bridge',
        ipam: {
          type: 'host-local',
          // The shim is the pods' way to their node; it is no router to anywhere else.
          ranges: [[{ subnet: lab.topology.underlay, rangeStart: slice.rangeStart, rangeEnd: slice.rangeEnd, gateway: slice.shim }]],
          routes: [{ dst: `${node.address}/32`, gw: slice.shim }],
          dataDir: backend.nodePath(node.name, '/var/lib/cni/networks'),
        },
      },
    ],
  };
}

/** The shim: a macvlan sibling of the pods with a /32, and the node's slice routed through it. */
export function shimCommands(slice: MacvlanSlice): string[][] {
  return [
    ['link', 'add', SHIM_DEVICE, 'link', UNDERLAY_DEVICE, 'type', 'macvlan', 'mode', 'bridge'],
    ['addr', 'add', `${slice.shim}/32`, 'dev', SHIM_DEVICE],
    ['link', 'set', SHIM_DEVICE, 'up'],
    ['route', 'add', slice.slice, 'dev', SHIM_DEVICE],
  ];
}

export async function installMacvlan(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  const slices = splitPodRange(lab.topology.underlay, lab.network.podCIDR, lab.network.subnetLen, nodes);
  for (const [i, node] of nodes.entries()) {
    const s = slices[i];
    await new Ip(backend.node(node.name)).batch(shimCommands(s));
    await backend.writeFile(node.name, `${CONF_DIR}/10-cnilab.conflist`, JSON.stringify(macvlanConfList(backend, lab, node, s), null, 2));
    progress(`macvlan on ${node.name}: pods ${s.rangeStart}-${s.rangeEnd}, shim ${SHIM_DEVICE} ${s.shim}`);
  }
}

/** Lab-file problems the schema cannot see, with the field they are in. */
export function validateMacvlan(lab: Lab): { path: (string | number)[]; message: string }[] {
  try {
    splitPodRange(lab.topology.underlay, lab.network.podCIDR, lab.network.subnetLen, lab.topology.nodes);
    return [];
  } catch (e) {
    if (e instanceof PodRangeError) return [{ path: ['network', e.field], message: e.message }];
    throw e;
  }
}
