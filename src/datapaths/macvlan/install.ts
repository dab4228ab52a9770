// Installing the macvlan underlay on a lab. Pods take addresses on the node
// network itself: the lab's podCIDR is a range of the underlay kept free for
// pods, split into one slice (subnetLen) per node so no address is handed out
// twice. Each node gets a shim, a macvlan of its own on the same parent: macvlan
// children cannot talk to their parent device, but they can talk to a sibling.
// The shim takes the first address of the node's slice; the node routes its
// slice through it, and each pod routes the node's own address through it.
// Dual-stack: macvlan itself carries any family. The IPv6 pod range
// (podCIDRv6) is a range of the IPv6 underlay, sliced per node the same way;
// the shim gets the first IPv6 address of the node's slice too.
import { underlayIface, type Backend, type NodeSpec } from '../../topologies/backend.js';
import { broadcast, contains, firstAddr, formatAddr, formatCidr, formatIp, formatPrefix, lastAddr, network, parseAddr, parseCidr, parseIp, parsePrefix, prefixContains, subnet, subprefix } from '../../net/ipnet.js';
import { CONF_DIR, type ConfList } from '../../cni/conflist.js';
import type { Lab } from '../../lab/lab-file.js';
import { Ip } from '../../net/ip.js';

/** The name of each node's shim; it and the pods' macvlans hang off the node's underlay device. */
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
    readonly field: 'podCIDR' | 'subnetLen' | 'podCIDRv6' | 'subnetLenV6',
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

/**
 * The IPv6 pod range split the same way, inside the IPv6 underlay. No
 * broadcast in IPv6; the underlay's own first address (the subnet-router
 * anycast address) is left out.
 */
export function splitPodRange6(underlayText: string, podRangeText: string, sliceLen: number, nodes: NodeSpec[]): MacvlanSlice[] {
  const underlay = parsePrefix(underlayText);
  const range = parsePrefix(podRangeText);
  if (underlay?.family !== 6) throw new PodRangeError('podCIDRv6', `macvlan pods live on the node network: dual-stack needs topology.underlayV6, an IPv6 underlay, for them`);
  if (range?.family !== 6) throw new PodRangeError('podCIDRv6', `"${podRangeText}" is not an IPv6 CIDR`);
  if (range.prefix < underlay.prefix || !prefixContains(underlay, { family: 6, value: firstAddr(range) })) {
    throw new PodRangeError('podCIDRv6', `macvlan pods live on the node network: ${podRangeText} must be a range inside the IPv6 underlay ${underlayText}`);
  }
  if (sliceLen < range.prefix) throw new PodRangeError('subnetLenV6', `/${sliceLen} is larger than the pod range ${podRangeText}`);
  if (2n ** BigInt(sliceLen - range.prefix) < BigInt(nodes.length)) {
    throw new PodRangeError('subnetLenV6', `${podRangeText} holds ${2n ** BigInt(sliceLen - range.prefix)} slices of /${sliceLen}, but the lab has ${nodes.length} nodes`);
  }
  for (const n of nodes) {
    const a = n.addressV6 ? parseAddr(n.addressV6) : undefined;
    if (a && prefixContains(range, a)) throw new PodRangeError('podCIDRv6', `node ${n.name}'s address ${n.addressV6} lies inside the pod range ${podRangeText}; keep node addresses out of it`);
  }
  return nodes.map((n, i) => {
    const s = subprefix(range, sliceLen, i);
    const first = firstAddr(s) === firstAddr(underlay) ? firstAddr(s) + 1n : firstAddr(s);
    const last = lastAddr(s);
    const addr = (value: bigint) => formatAddr({ family: 6, value });
    return { node: n.name, slice: formatPrefix(s), shim: addr(first), rangeStart: addr(first + 1n), rangeEnd: addr(last) };
  });
}

export function macvlanConfList(backend: Backend, lab: Lab, node: NodeSpec, slice: MacvlanSlice, slice6?: MacvlanSlice): ConfList {
  return {
    cniVersion: '1.0.0',
    name: 'macvlan',
    plugins: [
      {
        type: 'macvlan',
        master: underlayIface(node),
        mode: 'bridge',
        ipam: {
          type: 'host-local',
          // The shim is the pods' way to their node; it is no router to anywhere else.
          ranges: [
            [{ subnet: lab.topology.underlay, rangeStart: slice.rangeStart, rangeEnd: slice.rangeEnd, gateway: slice.shim }],
            ...(slice6 ? [[{ subnet: lab.topology.underlayV6!, rangeStart: slice6.rangeStart, rangeEnd: slice6.rangeEnd, gateway: slice6.shim }]] : []),
          ],
          routes: [{ dst: `${node.address}/32`, gw: slice.shim }, ...(slice6 ? [{ dst: `${node.addressV6}/128`, gw: slice6.shim }] : [])],
          dataDir: backend.nodePath(node.name, '/var/lib/cni/networks'),
        },
      },
    ],
  };
}

/** The shim: a macvlan sibling of the pods with a /32, and the node's slice routed through it. */
export function shimCommands(slice: MacvlanSlice, underlay: string, slice6?: MacvlanSlice): string[][] {
  return [
    ['link', 'add', SHIM_DEVICE, 'link', underlay, 'type', 'macvlan', 'mode', 'bridge'],
    ['addr', 'add', `${slice.shim}/32`, 'dev', SHIM_DEVICE],
    // The slice is this node's alone: no duplicate address detection to wait for.
    ...(slice6 ? [['addr', 'add', `${slice6.shim}/128`, 'dev', SHIM_DEVICE, 'nodad']] : []),
    ['link', 'set', SHIM_DEVICE, 'up'],
    ['route', 'add', slice.slice, 'dev', SHIM_DEVICE],
    ...(slice6 ? [['route', 'add', slice6.slice, 'dev', SHIM_DEVICE]] : []),
  ];
}

/** The IPv6 slices of a dual-stack lab, or none. */
function slices6(lab: Lab, nodes: NodeSpec[]): MacvlanSlice[] | undefined {
  if (!lab.network.podCIDRv6) return undefined;
  return splitPodRange6(lab.topology.underlayV6 ?? '', lab.network.podCIDRv6, lab.network.subnetLenV6, nodes);
}

export async function installMacvlan(backend: Backend, lab: Lab, nodes: NodeSpec[], progress: (msg: string) => void): Promise<void> {
  const slices = splitPodRange(lab.topology.underlay, lab.network.podCIDR, lab.network.subnetLen, nodes);
  const v6 = slices6(lab, nodes);
  for (const [i, node] of nodes.entries()) {
    const s = slices[i];
    const s6 = v6?.[i];
    await new Ip(backend.node(node.name)).batch(shimCommands(s, underlayIface(node), s6));
    await backend.writeFile(node.name, `${CONF_DIR}/10-cnilab.conflist`, JSON.stringify(macvlanConfList(backend, lab, node, s, s6), null, 2));
    progress(`macvlan on ${node.name}: pods ${s.rangeStart}-${s.rangeEnd}${s6 ? ` and ${s6.rangeStart}-${s6.rangeEnd}` : ''}, shim ${SHIM_DEVICE} ${s.shim}${s6 ? ` ${s6.shim}` : ''}`);
  }
}

/** Lab-file problems the schema cannot see, with the field they are in. */
export function validateMacvlan(lab: Lab): { path: (string | number)[]; message: string }[] {
  try {
    splitPodRange(lab.topology.underlay, lab.network.podCIDR, lab.network.subnetLen, lab.topology.nodes);
    slices6(lab, lab.topology.nodes);
    return [];
  } catch (e) {
    if (e instanceof PodRangeError) return [{ path: ['network', e.field], message: e.message }];
    throw e;
  }
}
