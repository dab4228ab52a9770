// The network a lab built, as plain data: what the kernel reported in each
// node's and pod's namespace, with the links between namespaces resolved.
// Built by a pure function from raw `ip -json` answers, so it is tested on
// recorded snapshots; drawn by render-text.ts and render-svg.ts.
import type { FdbEntry, Link, NetnsId, Neighbour, Route } from '../net/ip.js';
import type { TunOwner } from '../net/proc.js';
import type { BpfAttachment } from '../net/bpf.js';
import { encapsulationOf, isAttached, isTunnel, kindOf } from '../net/link-kinds.js';
import { canonicalAddr, formatPrefix, networkPrefix, parseAddr, parsePrefix, prefixContains, type Family, type Prefix } from '../net/ipnet.js';
import type { ServicesView } from './services.js';

/** One namespace as the kernel answered, before anything is resolved. */
export interface RawNamespace {
  kind: 'node' | 'pod';
  name: string;
  /** The node a pod runs on; a node's own name for a node. */
  node: string;
  /** Path of the namespace (for matching `ip netns list-id` names). */
  netns: string;
  links: Link[];
  routes: Route[];
  /** `ip -6 route show`, where the lab gives IPv6 addresses. */
  routes6?: Route[];
  neighbours: Neighbour[];
  fdb: FdbEntry[];
  nsids: NetnsId[];
  tunOwners?: TunOwner[];
  /** `iptables -t nat -S` on a node: what rewrites a packet's source on its way out. */
  nat?: string[];
  /** BPF programs on the namespace's devices (`bpftool net show`). */
  bpf?: BpfAttachment[];
}

export interface LinkView {
  ifindex: number;
  name: string;
  /** As `ip link` prints it: eth0@if5 for a link whose other end has index 5. */
  label: string;
  /** veth, bridge, vxlan, tun, macvlan, ipip, … or loopback / ether when the kernel names no kind. */
  kind: string;
  mtu: number;
  mac?: string;
  up: boolean;
  master?: string;
  /** IPv4 addresses with their prefix, in the kernel's order. */
  addresses: string[];
  /** IPv6 addresses with their prefix (link-local ones left out), where there are any. */
  addresses6?: string[];
  /** The other end in another namespace of the lab: a veth's peer, a macvlan's parent. */
  peer?: PeerRef;
  /** The other end is in a namespace outside the lab's nodes and pods (the underlay switch). */
  peerOutside?: boolean;
  /** A macvlan's parent device, in this namespace (a node's shim) or another (a pod's eth0 on its node). */
  parent?: PeerRef;
  vxlan?: { vni: number; port: number; local?: string; dev?: string };
  /** For a TUN device: the processes the kernel hands its packets to. */
  tunOwners?: { pid: number; comm: string; udpPorts: number[] }[];
  /** BPF programs attached to it: "tc ingress from_container". */
  bpf?: string[];
}

export interface PeerRef {
  ns: string;
  ifname: string;
  ifindex: number;
}

export interface NsView {
  /** "master", or "pod/nginx-0" */
  id: string;
  kind: 'node' | 'pod';
  name: string;
  node: string;
  links: LinkView[];
  routes: Route[];
  /** IPv6 routes (`ip -6 route`), link-local and multicast ones left out; where there are any. */
  routes6?: Route[];
  /** IPv4 (ARP) and IPv6 (NDP) entries together, as `ip neigh` lists them. */
  neighbours: Neighbour[];
  /** Unicast FDB entries (bridge ports, VXLAN remotes); multicast ones left out. */
  fdb: FdbEntry[];
  nat?: string[];
}

/** A node's route toward another node's pods, and how the packet gets there. */
export interface NodeRoute {
  node: string;
  dst: string;
  gateway?: string;
  dev: string;
  toNode?: string;
  /** "VXLAN VNI 1 → 192.168.10.220:8472", "via 192.168.10.220 (eth0)", "TUN flannel0 → pid 123 (udp 8285)" */
  how: string;
  route: string;
  /** 6 for an IPv6 route (`ip -6 route`); absent for IPv4. */
  family?: 6;
}

export interface NetModel {
  lab: string;
  backend: string;
  takenAt: string;
  /** The subnet every node has an address in. */
  underlay?: string;
  /** The IPv6 subnet every node has an address in, on a lab with an IPv6 underlay. */
  underlayV6?: string;
  namespaces: NsView[];
  nodeRoutes: NodeRoute[];
  /** The lab's Services as every node's kube-proxy has them (labs with services). */
  services?: ServicesView;
}


export const nsId = (kind: 'node' | 'pod', name: string) => (kind === 'pod' ? `pod/${name}` : name);


function ipv4(l: Link): string[] {
  return (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

/** Global IPv6 addresses: the link-local ones every interface has would only crowd the picture. */
function ipv6(l: Link): string[] {
  return (l.addr_info ?? []).filter((a) => a.family === 'inet6' && a.scope !== 'link' && a.scope !== 'host').map((a) => `${a.local}/${a.prefixlen}`);
}

const isLinkLocalOrMulticast = (dst: string) => /^(fe[89ab][0-9a-f]:|ff[0-9a-f]{2}:)/i.test(dst);

/** A link's addresses of one family, with their prefix. */
export function addressesOf(l: LinkView, family: Family): string[] {
  return family === 6 ? (l.addresses6 ?? []) : l.addresses;
}

/** A namespace's routing table of one family. */
export function routesOf(ns: NsView, family: Family): Route[] {
  return family === 6 ? (ns.routes6 ?? []) : ns.routes;
}

function linkView(l: Link): LinkView {
  const kind = kindOf(l);
  const data = l.linkinfo?.info_data ?? {};
  const view: LinkView = {
    ifindex: l.ifindex,
    name: l.ifname,
    label: l.link_index !== undefined && l.link_netnsid !== undefined ? `${l.ifname}@if${l.link_index}` : l.link ? `${l.ifname}@${l.link}` : l.ifname,
    kind,
    mtu: l.mtu,
    mac: l.address && l.link_type !== 'loopback' ? l.address : undefined,
    up: l.flags.includes('UP'),
    master: l.master,
    addresses: ipv4(l),
  };
  const v6 = ipv6(l);
  if (v6.length) view.addresses6 = v6;
  // A VXLAN device over IPv6 has its VTEP address in local6.
  if (kind === 'vxlan') view.vxlan = { vni: Number(data.id), port: Number(data.port ?? 8472), local: (data.local ?? data.local6) as string | undefined, dev: data.link as string | undefined };
  return view;
}

const isMulticastMac = (mac: string) => (parseInt(mac.slice(0, 2), 16) & 1) === 1;

/** Build the model: resolve which link is the other end of which, and what each node routes to which node. */
export function buildModel(raw: RawNamespace[], meta: { lab: string; backend: string; takenAt?: string }): NetModel {
  const namespaces: NsView[] = raw.map((r) => ({
    id: nsId(r.kind, r.name),
    kind: r.kind,
    name: r.name,
    node: r.node,
    links: r.links.map(linkView),
    routes: r.routes,
    ...(r.routes6?.some((x) => !isLinkLocalOrMulticast(x.dst)) ? { routes6: r.routes6.filter((x) => !isLinkLocalOrMulticast(x.dst)) } : {}),
    neighbours: r.neighbours,
    fdb: r.fdb.filter((f) => !isMulticastMac(f.mac)),
    ...(r.nat ? { nat: r.nat } : {}),
  }));
  raw.forEach((r, i) => resolvePeers(r, namespaces[i], raw, namespaces));
  for (const n of namespaces) {
    for (const l of n.links) {
      if (!isAttached(l.kind)) continue;
      const sameNs = l.label.includes('@') && !l.peer && !l.peerOutside ? n.links.find((p) => p.name === l.label.split('@')[1]) : undefined;
      l.parent = l.peer ?? (sameNs && { ns: n.id, ifname: sameNs.name, ifindex: sameNs.ifindex });
    }
  }
  raw.forEach((r, i) => {
    for (const b of r.bpf ?? []) {
      const link = namespaces[i].links.find((l) => l.name === b.dev);
      if (link) (link.bpf ??= []).push(`${b.hook} ${b.name}`);
    }
    for (const o of r.tunOwners ?? []) {
      const link = namespaces[i].links.find((l) => l.name === o.ifname);
      if (link) (link.tunOwners ??= []).push({ pid: o.pid, comm: o.comm, udpPorts: o.udpPorts });
    }
  });
  const model: NetModel = { lab: meta.lab, backend: meta.backend, takenAt: meta.takenAt ?? new Date().toISOString(), namespaces, nodeRoutes: [] };
  model.underlay = underlaySubnet(model);
  const underlayV6 = underlaySubnet(model, 6);
  if (underlayV6) model.underlayV6 = underlayV6;
  model.nodeRoutes = namespaces.filter((n) => n.kind === 'node').flatMap((n) => nodeRoutes(model, n));
  return model;
}

/**
 * The other end of each veth (and a macvlan's parent) in another namespace. The
 * kernel gives the peer's ifindex and the peer namespace's id as this namespace
 * numbers it; `ip netns list-id` names that namespace when it is a named one.
 * Without a name, the pair is found by the indices pointing at each other,
 * preferring the pod's own node when several namespaces would fit.
 */
function resolvePeers(r: RawNamespace, view: NsView, raw: RawNamespace[], all: NsView[]): void {
  for (const l of r.links) {
    if (l.link_index === undefined || l.link_netnsid === undefined) continue;
    const link = view.links.find((v) => v.ifindex === l.ifindex)!;
    const named = r.nsids.find((n) => n.nsid === l.link_netnsid)?.name;
    let target: number | undefined;
    if (named) target = raw.findIndex((o) => basename(o.netns) === named);
    if (target === undefined || target < 0) {
      const fits = raw
        .map((o, i) => ({ o, i }))
        .filter(({ o }) => o !== r && o.links.some((p) => p.ifindex === l.link_index && (kindOf(l) !== 'veth' || p.link_index === l.ifindex)));
      // A name that is not one of ours means the other end is outside the lab's view (the underlay).
      const pick = named ? undefined : fits.length === 1 ? fits[0] : fits.find(({ o }) => o.name === r.node || o.node === r.name);
      target = pick?.i;
    }
    if (target === undefined || target < 0) {
      link.peerOutside = true;
      continue;
    }
    const p = raw[target].links.find((x) => x.ifindex === l.link_index);
    if (p) link.peer = { ns: all[target].id, ifname: p.ifname, ifindex: p.ifindex };
    else link.peerOutside = true;
  }
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * The underlay: a network every node has an address in, each node a different
 * one (a docker0 with 172.17.0.1 on every node is shared, but not a network
 * between them). The widest such network, host routes aside.
 */
export function underlaySubnet(model: NetModel, family: Family = 4): string | undefined {
  const nodes = model.namespaces.filter((n) => n.kind === 'node');
  if (!nodes.length) return undefined;
  // Tunnel devices carry pod addresses (flannel0 holds 10.10.0.0/16 on every node): not the underlay.
  const addrs = (n: NsView) => n.links.filter((l) => l.kind !== 'loopback' && !isTunnel(l.kind)).flatMap((l) => addressesOf(l, family));
  const netOf = (a: string) => formatPrefix(networkPrefix(parsePrefix(a)!));
  const host = family === 6 ? '/128' : '/32';
  const candidates = new Set(addrs(nodes[0]).map(netOf).filter((c) => !c.endsWith(host)));
  const shared = [...candidates].filter((net) => {
    const mine = nodes.map((n) => addrs(n).find((a) => netOf(a) === net)?.split('/')[0]);
    return mine.every(Boolean) && new Set(mine).size === nodes.length;
  });
  return shared.sort((a, b) => Number(a.split('/')[1]) - Number(b.split('/')[1]))[0];
}

export function nsById(model: NetModel, id: string): NsView | undefined {
  return model.namespaces.find((n) => n.id === id);
}

export function linkByName(ns: NsView, name: string | undefined): LinkView | undefined {
  return name === undefined ? undefined : ns.links.find((l) => l.name === name);
}

/** The node uplink: the link holding the node's address in the underlay (of that family). */
export function uplink(model: NetModel, ns: NsView, family: Family = 4): LinkView | undefined {
  const text = family === 6 ? model.underlayV6 : model.underlay;
  const under = text ? parsePrefix(text) : undefined;
  const inUnderlay = (l: LinkView) => under !== undefined && addressesOf(l, family).some((a) => prefixContains(under, parseAddr(a.split('/')[0])!));
  return ns.links.find((l) => inUnderlay(l) && l.kind !== 'macvlan') ?? ns.links.find(inUnderlay);
}

/** A node's own address in the underlay of that family. */
export function uplinkAddress(model: NetModel, ns: NsView, family: Family = 4): string | undefined {
  const up = uplink(model, ns, family);
  return up && addressesOf(up, family)[0]?.split('/')[0];
}

/** The first address of a family in a namespace outside loopback: a pod's own address. */
export function primaryAddress(ns: NsView, family: Family = 4): string | undefined {
  for (const l of ns.links) if (l.kind !== 'loopback' && addressesOf(l, family).length) return addressesOf(l, family)[0].split('/')[0];
  return undefined;
}

/** Which namespace has `ip` (either family, in any IPv6 spelling) as one of its addresses. */
export function ownerOfAddress(model: NetModel, ip: string): { ns: NsView; link: LinkView } | undefined {
  const want = canonicalAddr(ip) ?? ip;
  const has = (list: string[] | undefined) => (list ?? []).some((a) => canonicalAddr(a.split('/')[0]) === want);
  for (const ns of model.namespaces) for (const link of ns.links) if (has(link.addresses) || has(link.addresses6)) return { ns, link };
  return undefined;
}

/** Which link (outside `except`) has MAC `mac`; links that carry an address come first (a bridge port may share its bridge's MAC). */
export function ownerOfMac(model: NetModel, mac: string, except?: string): { ns: NsView; link: LinkView } | undefined {
  const found: { ns: NsView; link: LinkView }[] = [];
  for (const ns of model.namespaces) if (ns.id !== except) for (const link of ns.links) if (link.mac?.toLowerCase() === mac.toLowerCase()) found.push({ ns, link });
  return found.find((f) => f.link.addresses.length) ?? found.find((f) => !f.link.master) ?? found[0];
}

/**
 * The node (other than `from`) where packets for `dst` (an address or a whole subnet) are delivered: the one with
 * the most specific directly connected route to it (a pod subnet on a bridge, a
 * /32 to a pod's veth), tunnels left aside.
 */
export function nodeServing(model: NetModel, dst: string, from?: string): NsView | undefined {
  const want = asPrefix(dst);
  if (!want) return undefined;
  const addr = { family: want.family, value: want.ip };
  let best: { ns: NsView; len: number } | undefined;
  for (const ns of model.namespaces) {
    if (ns.kind !== 'node' || ns.id === from) continue;
    for (const r of routesOf(ns, want.family)) {
      // IPv6 connected routes carry no scope: the kernel marks none as link-scoped.
      if (r.type || r.gateway || (want.family === 4 && r.scope !== 'link') || r.dst === 'default') continue;
      const rp = asPrefix(r.dst);
      if (!rp || !prefixContains(rp, addr)) continue;
      if (isTunnel(linkByName(ns, r.dev)?.kind ?? '')) continue;
      const len = rp.prefix;
      if (len > want.prefix) continue; // covers only part of what is asked for
      if (!best || len > best.len) best = { ns, len };
    }
  }
  return best?.ns;
}

/** A route's destination or an address as a prefix: a bare address is a host route (/32, /128). */
function asPrefix(dst: string): Prefix | undefined {
  if (dst.includes('/')) return parsePrefix(dst);
  const a = parseAddr(dst);
  return a && { family: a.family, ip: a.value, prefix: a.family === 6 ? 128 : 32 };
}

/** Longest-prefix match over a routing table (main table, unicast), for an address of the table's family. */
export function longestMatch(routes: Route[], ip: string): Route | undefined {
  const addr = parseAddr(ip);
  if (addr === undefined) return undefined;
  let best: { r: Route; len: number } | undefined;
  for (const r of routes) {
    if (r.type && r.type !== 'unicast') continue;
    const p = r.dst === 'default' ? undefined : asPrefix(r.dst);
    if (r.dst !== 'default' && (!p || !prefixContains(p, addr))) continue;
    const len = p?.prefix ?? 0;
    if (!best || len > best.len) best = { r, len };
  }
  return best?.r;
}

/** A route as `ip route` prints it. */
export function formatRoute(r: Route): string {
  return [
    r.dst,
    r.gateway ? `via ${r.gateway}` : '',
    r.dev ? `dev ${r.dev}` : '',
    r.protocol && r.protocol !== 'boot' ? `proto ${r.protocol}` : '',
    r.scope && r.scope !== 'global' ? `scope ${r.scope}` : '',
    r.prefsrc ? `src ${r.prefsrc}` : '',
    ...(r.flags ?? []),
  ]
    .filter(Boolean)
    .join(' ');
}

export function neighbourOf(ns: NsView, ip: string, dev?: string): Neighbour | undefined {
  return ns.neighbours.find((n) => n.dst === ip && (!dev || n.dev === dev) && n.lladdr);
}

/** The FDB entry for `mac` on a VXLAN device, or on a bridge (an entry learned or set on one of its ports). */
export function fdbFor(ns: NsView, mac: string, dev: LinkView): FdbEntry | undefined {
  const same = (f: FdbEntry) => f.mac.toLowerCase() === mac.toLowerCase();
  if (dev.kind === 'bridge') return ns.fdb.find((f) => same(f) && f.master === dev.name && f.state !== 'permanent') ?? ns.fdb.find((f) => same(f) && f.master === dev.name);
  return ns.fdb.find((f) => same(f) && f.ifname === dev.name && f.dst);
}

/** How each of a node's routes reaches another node: the tunnel or next hop, from the kernel's tables. */
function nodeRoutes(model: NetModel, ns: NsView): NodeRoute[] {
  const out: NodeRoute[] = [];
  for (const [family, r] of [...ns.routes.map((r) => [4, r] as const), ...(ns.routes6 ?? []).map((r) => [6, r] as const)]) {
    if (r.dst === 'default' || !r.dev || r.type) continue;
    const dev = linkByName(ns, r.dev);
    if (!dev) continue;
    let toNode: string | undefined;
    let how: string | undefined;
    if (encapsulationOf(dev.kind) === 'vxlan' && r.gateway) {
      const mac = neighbourOf(ns, r.gateway, dev.name)?.lladdr;
      const remote = mac ? fdbFor(ns, mac, dev)?.dst : undefined;
      if (remote) {
        toNode = ownerOfAddress(model, remote)?.ns.node;
        how = `VXLAN VNI ${dev.vxlan?.vni} via ${dev.name} → ${hostPort(remote, dev.vxlan?.port)}`;
      }
    } else if (encapsulationOf(dev.kind) === 'tun') {
      // One TUN route may cover every node's subnet (then the process behind it picks the node per packet).
      toNode = nodeServing(model, r.dst, ns.id)?.node;
      const owner = dev.tunOwners?.[0];
      how = `TUN ${dev.name} → ${owner ? `${owner.comm} (pid ${owner.pid}${owner.udpPorts.length ? `, udp ${owner.udpPorts.join(',')}` : ''})` : 'a user-space process'}`;
    } else if (r.gateway) {
      const owner = ownerOfAddress(model, r.gateway);
      if (owner && owner.ns.kind === 'node' && owner.ns.id !== ns.id) {
        toNode = owner.ns.node;
        how = `routed via ${r.gateway} (${r.dev})`;
      }
    } else if (encapsulationOf(dev.kind) === 'ip-in-ip') {
      toNode = nodeServing(model, r.dst, ns.id)?.node;
      how = `${dev.kind.toUpperCase()} ${dev.name}`;
    }
    if (how && toNode !== ns.node) out.push({ node: ns.node, dst: r.dst, gateway: r.gateway, dev: r.dev, toNode, how, route: formatRoute(r), ...(family === 6 ? { family } : {}) });
  }
  return out;
}

/** An address and port as one writes them: [fd00::1]:8472 for IPv6. */
export function hostPort(ip: string, port: number | undefined): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return port === undefined ? host : `${host}:${port}`;
}

/**
 * The model with one family only, for a drawing that would be crowded with both:
 * the other family's addresses, routes, neighbours, FDB remotes and node routes left out.
 */
export function forFamily(model: NetModel, family: Family): NetModel {
  const keep = (ip: string | undefined) => ip === undefined || parseAddr(ip)?.family === family;
  const namespaces = model.namespaces.map((n) => ({
    ...n,
    links: n.links.map((l) => {
      const { addresses6, ...rest } = l;
      // Drawn where the IPv4 addresses would be.
      return family === 6 ? { ...rest, addresses: addresses6 ?? [] } : rest;
    }),
    routes: routesOf(n, family),
    routes6: undefined,
    neighbours: n.neighbours.filter((e) => keep(e.dst)),
    fdb: n.fdb.filter((f) => keep(f.dst)),
    // iptables rewrites IPv4 only.
    nat: family === 6 ? undefined : n.nat,
  }));
  // Tunnel devices of the other family go too: flannel-v6.1 has nothing to say in an IPv4 drawing.
  for (const n of namespaces) n.links = n.links.filter((l) => !l.vxlan?.local || keep(l.vxlan.local));
  return {
    ...model,
    underlay: family === 6 ? model.underlayV6 : model.underlay,
    underlayV6: undefined,
    namespaces,
    nodeRoutes: model.nodeRoutes.filter((r) => (r.family ?? 4) === family),
  };
}
