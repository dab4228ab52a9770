// What to draw inside each node, worked out once from the model for both
// renderers (terminal and SVG): the uplink, bridges with their ports and the pod
// behind each port, tunnel devices, pods reached without a bridge (a veth routed
// by the node, a macvlan on the uplink), and the routes toward other nodes.
import { isTunnel } from '../net/link-kinds.js';
import { formatRoute, linkByName, uplink, type LinkView, type NetModel, type NodeRoute, type NsView } from './model.js';

export interface PodEnd {
  pod: NsView;
  /** The pod's interface: eth0@if5 */
  link: LinkView;
  /** The pod's default gateway, as its routing table says. */
  gateway?: string;
  /** Its IPv6 default gateway, on a dual-stack pod. */
  gateway6?: string;
}

export interface Attachment {
  /** The node-side interface: a veth (port or routed), or the macvlan parent. */
  host: LinkView;
  pod?: PodEnd;
}

export interface BridgeView {
  bridge: LinkView;
  ports: Attachment[];
}

export interface NodeLayout {
  node: NsView;
  uplink?: LinkView;
  bridges: BridgeView[];
  /** Host-side veths with no bridge: routed by the node itself (Calico's caliXXXX). */
  routed: Attachment[];
  /** Pods whose eth0 is a macvlan on one of this node's links. */
  macvlanPods: { parent: LinkView; pod: PodEnd }[];
  /** VXLAN, TUN, IPIP and other devices that carry traffic to other nodes. */
  tunnels: LinkView[];
  /** Anything else the kernel shows (a macvlan shim, a dummy, …). */
  others: LinkView[];
  /** Pods of this node not connected to anything we saw. */
  loosePods: PodEnd[];
  routes: string[];
  /** The nat table's rewriting rules (MASQUERADE, SNAT, DNAT), comments left out. */
  nat: string[];
  toNodes: NodeRoute[];
}

function podEnd(model: NetModel, pod: NsView): PodEnd | undefined {
  const link = pod.links.find((l) => l.kind !== 'loopback' && (l.peer || l.addresses.length));
  if (!link) return undefined;
  const gw = pod.routes.find((r) => r.dst === 'default')?.gateway;
  const gw6 = pod.routes6?.find((r) => r.dst === 'default')?.gateway;
  return { pod, link, gateway: gw, ...(gw6 ? { gateway6: gw6 } : {}) };
}

export function layoutNode(model: NetModel, node: NsView): NodeLayout {
  const up = uplink(model, node) ?? uplink(model, node, 6);
  const pods = model.namespaces.filter((n) => n.kind === 'pod' && n.node === node.name);
  const placed = new Set<string>();
  const podBehind = (host: LinkView): PodEnd | undefined => {
    if (!host.peer) return undefined;
    const pod = pods.find((p) => p.id === host.peer!.ns) ?? model.namespaces.find((n) => n.kind === 'pod' && n.id === host.peer!.ns);
    if (!pod) return undefined;
    placed.add(pod.id);
    const end = podEnd(model, pod);
    return end && { ...end, link: linkByName(pod, host.peer.ifname) ?? end.link };
  };

  const bridges: BridgeView[] = node.links
    .filter((l) => l.kind === 'bridge')
    .map((bridge) => ({ bridge, ports: node.links.filter((l) => l.master === bridge.name).map((host) => ({ host, pod: podBehind(host) })) }));
  const routed = node.links.filter((l) => l.kind === 'veth' && !l.master && l !== up && l.peer?.ns.startsWith('pod/')).map((host) => ({ host, pod: podBehind(host) }));

  const macvlanPods: NodeLayout['macvlanPods'] = [];
  for (const pod of model.namespaces.filter((n) => n.kind === 'pod')) {
    for (const l of pod.links) {
      if (l.kind !== 'macvlan' || l.peer?.ns !== node.id) continue;
      const parent = node.links.find((p) => p.ifindex === l.peer!.ifindex);
      const end = podEnd(model, pod);
      if (parent && end) {
        macvlanPods.push({ parent, pod: { ...end, link: l } });
        placed.add(pod.id);
      }
    }
  }

  const shown = new Set<LinkView>([...(up ? [up] : []), ...bridges.flatMap((b) => [b.bridge, ...b.ports.map((p) => p.host)]), ...routed.map((r) => r.host)]);
  const tunnels = node.links.filter((l) => isTunnel(l.kind) && !shown.has(l));
  const others = node.links.filter((l) => l.kind !== 'loopback' && !shown.has(l) && !tunnels.includes(l));
  const loosePods = pods.filter((p) => !placed.has(p.id)).flatMap((p) => podEnd(model, p) ?? []);
  // IPv4 routes, then the IPv6 ones (`ip -6 route`).
  const routes = [...node.routes, ...(node.routes6 ?? [])].map((r) => (r.type ? `${r.type} ${formatRoute(r)}` : formatRoute(r)));
  const nat = (node.nat ?? []).filter((r) => / -j (MASQUERADE|SNAT|DNAT)\b/.test(r)).map((r) => r.replace(/ -m comment --comment ("[^"]*"|\S+)/g, ''));
  return { node, uplink: up, bridges, routed, macvlanPods, tunnels, others, loosePods, routes, nat, toNodes: model.nodeRoutes.filter((r) => r.node === node.name) };
}

export function layoutNodes(model: NetModel): NodeLayout[] {
  return model.namespaces.filter((n) => n.kind === 'node').map((n) => layoutNode(model, n));
}

/** IPv4 then IPv6 addresses of a link. */
export function allAddresses(l: LinkView): string[] {
  return [...l.addresses, ...(l.addresses6 ?? [])];
}

/** One line about a device: kind, VXLAN id and port, addresses, MTU. */
export function describeLink(l: LinkView): string {
  const parts: string[] = [l.kind];
  if (l.vxlan) parts.push(`VNI ${l.vxlan.vni}`, `UDP ${l.vxlan.port}`, ...(l.vxlan.local ? [`local ${l.vxlan.local}`] : []));
  if (l.tunOwners?.length) parts.push(`→ ${l.tunOwners.map((o) => `${o.comm} pid ${o.pid}${o.udpPorts.length ? ` UDP ${o.udpPorts.join(',')}` : ''}`).join(', ')}`);
  parts.push(...allAddresses(l));
  parts.push(`mtu ${l.mtu}`);
  if (l.bpf?.length) parts.push(`BPF: ${l.bpf.join(', ')}`);
  if (!l.up) parts.push('DOWN');
  return parts.join(' · ');
}

export function describePod(p: PodEnd): string {
  return [p.link.label, ...allAddresses(p.link), ...(p.gateway ? [`gw ${p.gateway}`] : []), ...(p.gateway6 ? [`gw ${p.gateway6}`] : []), `mtu ${p.link.mtu}`].join(' · ');
}
