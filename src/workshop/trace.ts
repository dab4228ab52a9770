// The path a packet takes from one pod to another, hop by hop, from the
// kernel's own answers: `ip route get` in each namespace it reaches, then the
// neighbour entry for the next hop, the bridge's FDB, the veth pair, the VXLAN
// FDB and the underlay, until the destination says "local".
//
// The walk is a function of the model (the tables read once) and a route
// oracle (the kernel's `ip route get`, or a table lookup in unit tests), so the
// same code is tested on recorded and synthetic topologies.
import { encapsulationOf, isAttached } from '../net/link-kinds.js';
import type { RouteLookup } from '../net/ip.js';
import { familyOf, type Family } from '../net/ipnet.js';
import { sourceNat } from './nat.js';
import {
  fdbFor,
  formatRoute,
  hostPort,
  linkByName,
  longestMatch,
  neighbourOf,
  nodeServing,
  nsById,
  ownerOfMac,
  routesOf,
  uplinkAddress,
  type LinkView,
  type NetModel,
  type NsView,
} from './model.js';

export interface TraceEnd {
  /** Model namespace id: "pod/nginx-0" or "master" */
  ns: string;
  ip: string;
}

export type HopKind = 'route' | 'bpf' | 'nat' | 'neighbour' | 'veth' | 'bridge' | 'fdb' | 'encap' | 'wire' | 'decap' | 'tun' | 'macvlan' | 'deliver';

export interface Hop {
  /** Namespace id where this happens. */
  at: string;
  kind: HopKind;
  text: string;
  /** The command that gives this answer, to type in `cnilab shell`. */
  kernel?: string;
  /** The interface the packet is on here (what --capture listens on). */
  device?: string;
  /** The pod's own packet, or the tunnel packet around it. */
  layer?: 'inner' | 'outer';
  /** The packet's source address here (it changes where a node applies source NAT). */
  src?: string;
  /** Packets a capture on `device` counted while the ping ran. */
  packets?: number;
  /** The tcpdump filter that counted them. */
  filter?: string;
}

export interface Tunnel {
  via: 'vxlan' | 'tun';
  src: string;
  dst: string;
  port?: number;
  vni?: number;
}

export interface TracePath {
  lab: string;
  /** The pods' address family: 6 when the trace follows IPv6 packets. */
  family: Family;
  from: TraceEnd;
  to: TraceEnd;
  hops: Hop[];
  delivered: boolean;
  /** Why the walk stopped short, and what to look at. */
  problem?: string;
  /** Where a node rewrote the source address, and to what. */
  nat?: { at: string; to: string };
  /** Set when tunnels wrap the packet: what a capture filters on outside. */
  tunnels: Tunnel[];
}

export interface RouteOracle {
  routeGet(ns: string, dst: string, opts: { from?: string; iif?: string }): Promise<RouteLookup>;
}

/** Where the packet continues: routed in a namespace having arrived on `iif`, or wrapped in a tunnel. */
type Next = { ns: NsView; iif: string } | { tunnel: Tunnel } | { problem: string };

class Walk {
  hops: Hop[] = [];
  tunnel?: Tunnel;
  constructor(
    readonly model: NetModel,
    public src: string,
    readonly dst: string,
  ) {}

  get layer(): 'inner' | 'outer' {
    return this.tunnel ? 'outer' : 'inner';
  }

  hop(h: Hop): void {
    this.hops.push(h.device ? { layer: this.layer, ...(this.tunnel ? {} : { src: this.src }), ...h } : h);
  }

  ns(id: string): NsView {
    const ns = nsById(this.model, id);
    if (!ns) throw new Error(`namespace ${id} is not part of the model`);
    return ns;
  }
}

const where = (ns: NsView) => (ns.kind === 'pod' ? `pod ${ns.name}` : `node ${ns.name}`);

/** Walk from `from` to `to`; every decision is the kernel's (`oracle`) or read from its tables (`model`). */
export async function walk(model: NetModel, oracle: RouteOracle, from: TraceEnd, to: TraceEnd): Promise<TracePath> {
  const w = new Walk(model, from.ip, to.ip);
  const tunnels: Tunnel[] = [];
  let origin = from.ip;
  let nat: TracePath['nat'];
  const family = familyOf(to.ip) ?? 4;
  const result = (delivered: boolean, problem?: string): TracePath => ({ lab: model.lab, family, from: { ...from, ip: origin }, to, hops: w.hops, delivered, problem, tunnels, ...(nat ? { nat } : {}) });
  let ns = w.ns(from.ns);
  let iif: string | undefined;

  const seen = new Set<string>();
  for (let guard = 0; guard < 64; guard++) {
    const t = w.tunnel;
    const dst = t?.dst ?? to.ip;
    const src = t?.src ?? w.src;
    const state = `${ns.id}|${iif}|${src}|${dst}`;
    if (seen.has(state)) return result(false, `the packet comes back to ${where(ns)}${iif ? ` on ${iif}` : ''} on its way to ${dst}: a routing loop`);
    seen.add(state);
    const opts = iif ? { from: src, iif } : {};
    const kernel = `ip ${familyOf(dst) === 6 ? '-6 ' : ''}route get ${dst}${iif ? ` from ${src} iif ${iif}` : ''}`;
    // A BPF program where the packet arrives sees it before the routing table, and may send it elsewhere.
    const bpf = linkByName(ns, iif)?.bpf?.filter((b) => b.startsWith('tc ingress') || b.startsWith('xdp'));
    if (bpf?.length) w.hop({ at: ns.id, kind: 'bpf', text: `${iif} runs BPF (${bpf.join(', ')}): the program sees the packet first and may redirect it; the tables below are what the kernel would use otherwise`, kernel: 'bpftool net show' });
    let r: RouteLookup;
    try {
      r = await oracle.routeGet(ns.id, dst, opts);
    } catch (e) {
      if (bpf?.length) return result(false, `${where(ns)}'s routing table has no route to ${dst}: from ${iif} on, the BPF program (${bpf.join(', ')}) forwards the packet, which the kernel's tables cannot show; with --capture the trace lists where the pings really go.`);
      return result(false, `${where(ns)} has no route to ${dst}: ${(e as Error).message.split('\n').pop()}. Look at \`ip route\` there (cnilab shell ${ns.name}).`);
    }

    if (r.type === 'local') {
      if (!t) {
        w.hop({ at: ns.id, kind: 'deliver', text: `${dst} is an address of ${where(ns)}: delivered`, kernel });
        if (ns.id !== to.ns) return result(false, `the packet never leaves for ${where(w.ns(to.ns))}: ${where(ns)} has the same address ${dst} itself, so the pod network is not one flat network (every pod needs its own address)`);
        return result(true);
      }
      const next = arriveThroughTunnel(w, ns, t, kernel);
      if ('problem' in next) return result(false, next.problem);
      ({ ns, iif } = next as { ns: NsView; iif: string });
      continue;
    }

    // The source address is the kernel's choice for the first hop (a node may send from another of its addresses).
    if (guard === 0 && r.prefsrc) w.src = origin = r.prefsrc;
    const out = linkByName(ns, r.dev);
    if (!out) return result(false, `${where(ns)}: the kernel routes ${dst} to ${r.dev}, which cnilab did not see there`);
    const matched = longestMatch(routesOf(ns, familyOf(dst) ?? 4), dst);
    const decision = `${r.gateway ? `via ${r.gateway} ` : ''}dev ${r.dev}`;
    const text = matched && matched.dev === r.dev && matched.gateway === r.gateway ? formatRoute(matched) + (matched.protocol === 'bird' ? ' (learned over BGP: BIRD put it there)' : '') : `${dst} ${decision}`;
    w.hop({ at: ns.id, kind: 'route', text, kernel, device: out.name });
    const routeHop = w.hops[w.hops.length - 1];

    // Source NAT on the way out (a node masquerading what leaves its pod network).
    const snat = !t && ns.nat?.length ? sourceNat(ns.nat, { src: w.src, dst: to.ip, outDev: out.name }) : undefined;
    if (snat) {
      const to2 = snat.toSource ?? r.prefsrc ?? out.addresses[0]?.split('/')[0] ?? '?';
      const rule = snat.rule.replace(/ -m comment --comment ("[^"]*"|\S+)/g, '');
      w.hop({ at: ns.id, kind: 'nat', text: `iptables nat POSTROUTING rewrites the source ${w.src} → ${to2} (${snat.masquerade ? `MASQUERADE: ${out.name}'s address` : 'SNAT'}): ${rule}`, kernel: 'iptables -t nat -S POSTROUTING' });
      // tcpdump on the outgoing interface sees the packet after POSTROUTING, with its new source.
      routeHop.src = to2;
      w.src = to2;
      nat = { at: ns.id, to: to2 };
    }

    if (encapsulationOf(out.kind) === 'tun') {
      const next = intoTun(w, ns, out, to.ip);
      if ('problem' in next) return result(false, next.problem);
      tunnels.push(next.tunnel);
      w.tunnel = next.tunnel;
      iif = undefined;
      continue;
    }

    const nexthop = r.gateway ?? dst;
    const neigh = neighbourOf(ns, nexthop, out.name);
    if (!neigh?.lladdr) {
      return result(false, `${where(ns)} has no neighbour entry for ${nexthop} on ${out.name} (the kernel has not resolved it; is the other end up?). Try \`ip neigh show dev ${out.name}\` there.`);
    }
    w.hop({ at: ns.id, kind: 'neighbour', text: `${nexthop} is at ${neigh.lladdr} on ${out.name} (${(neigh.state ?? []).join(' ') || 'no state'})`, kernel: `ip neigh show ${nexthop} dev ${out.name}` });

    const next = forward(w, ns, out, neigh.lladdr);
    if ('problem' in next) return result(false, next.problem);
    if ('tunnel' in next) {
      tunnels.push(next.tunnel);
      w.tunnel = next.tunnel;
      iif = undefined; // the tunnel packet starts in this namespace, as if sent from it
      continue;
    }
    ({ ns, iif } = next);
  }
  return result(false, 'the walk went round in circles (more than 64 steps): the routes point at each other');
}

/** Layer 2 from `out` toward `mac`: bridges, veth pairs, VXLAN, macvlan, and the underlay wire. */
function forward(w: Walk, start: NsView, out: LinkView, mac: string): Next {
  let ns = start;
  let cur = out;
  for (let guard = 0; guard < 16; guard++) {
    if (cur.kind === 'bridge') {
      const f = fdbFor(ns, mac, cur);
      if (!f?.ifname) return { problem: `bridge ${cur.name} on ${where(ns)} has no FDB entry for ${mac}; try \`bridge fdb show br ${cur.name}\`` };
      w.hop({ at: ns.id, kind: 'fdb', text: `${mac} is behind port ${f.ifname} of ${cur.name}`, kernel: `bridge fdb show br ${cur.name}`, device: f.ifname });
      const port = linkByName(ns, f.ifname);
      if (!port) return { problem: `${cur.name}'s port ${f.ifname} is not among ${where(ns)}'s links` };
      cur = port;
      continue;
    }

    if (encapsulationOf(cur.kind) === 'vxlan') {
      const f = fdbFor(ns, mac, cur);
      if (!f?.dst) return { problem: `${cur.name} on ${where(ns)} has no FDB entry for ${mac}, so it does not know which node to send to; try \`bridge fdb show dev ${cur.name}\`` };
      w.hop({ at: ns.id, kind: 'fdb', text: `${mac} is reached through ${f.dst} (${cur.name} FDB, ${f.state || 'learned'})`, kernel: `bridge fdb show dev ${cur.name}` });
      const vx = cur.vxlan!;
      const local = vx.local ?? uplinkAddress(w.model, ns, familyOf(f.dst) ?? 4) ?? '?';
      const tunnel: Tunnel = { via: 'vxlan', src: local, dst: f.dst, port: vx.port, vni: vx.vni };
      const over = familyOf(f.dst) === 6 ? ' over IPv6' : '';
      w.hop({ at: ns.id, kind: 'encap', text: `${cur.name} wraps it in VXLAN${over}: VNI ${vx.vni}, UDP ${local} → ${hostPort(f.dst, vx.port)}` });
      return { tunnel };
    }

    if (cur.peer && cur.kind === 'veth') {
      const peerNs = w.ns(cur.peer.ns);
      const peer = linkByName(peerNs, cur.peer.ifname)!;
      w.hop({ at: peerNs.id, kind: 'veth', text: `${cur.label} in ${where(ns)} is a veth pair with ${peer.label} in ${where(peerNs)}: the packet comes out there`, device: peer.name });
      ns = peerNs;
      if (!peer.master) return { ns, iif: peer.name };
      const bridge = linkByName(ns, peer.master);
      if (!bridge) return { problem: `${peer.name} has master ${peer.master}, which is not among ${where(ns)}'s links` };
      if (bridge.mac === mac) {
        w.hop({ at: ns.id, kind: 'bridge', text: `${peer.name} is a port of bridge ${bridge.name}; ${mac} is ${bridge.name}'s own address, so the bridge hands the packet up to ${where(ns)}'s IP stack`, device: bridge.name });
        return { ns, iif: bridge.name };
      }
      const f = fdbFor(ns, mac, bridge);
      if (!f?.ifname) return { problem: `bridge ${bridge.name} on ${where(ns)} has no FDB entry for ${mac}; try \`bridge fdb show br ${bridge.name}\`` };
      w.hop({ at: ns.id, kind: 'bridge', text: `${peer.name} is a port of bridge ${bridge.name}; its FDB puts ${mac} behind port ${f.ifname}`, kernel: `bridge fdb show br ${bridge.name}`, device: f.ifname });
      const port = linkByName(ns, f.ifname);
      if (!port) return { problem: `${bridge.name}'s port ${f.ifname} is not among ${where(ns)}'s links` };
      cur = port;
      continue;
    }

    if (isAttached(cur.kind) && cur.parent) {
      const parent = cur.parent;
      const parentNs = w.ns(parent.ns);
      const parentLink = linkByName(parentNs, parent.ifname)!;
      // Children of one parent reach each other inside the macvlan driver (bridge mode); anything else leaves through the parent.
      for (const ns2 of w.model.namespaces) {
        const sib = ns2.links.find((l) => l !== cur && l.kind === cur.kind && l.mac === mac && l.parent?.ns === parent.ns && l.parent.ifindex === parent.ifindex);
        if (sib) {
          w.hop({ at: ns2.id, kind: 'macvlan', text: `${cur.name} of ${where(ns)} and ${sib.name} of ${where(ns2)} are ${cur.kind}s on the same parent, ${parentNs.name}'s ${parentLink.name}: delivered between them directly`, device: sib.name });
          return { ns: ns2, iif: sib.name };
        }
      }
      w.hop({ at: parentNs.id, kind: 'macvlan', text: `${cur.name} is a ${cur.kind} on ${where(parentNs)}'s ${parentLink.name}: the frame leaves through ${parentLink.name}` });
      ns = parentNs;
      cur = parentLink;
      continue;
    }

    // The other end is outside the lab's namespaces (the underlay switch): the interface with that MAC gets it.
    const owner = ownerOfMac(w.model, mac, ns.id);
    if (!owner) return { problem: `no interface in the lab has MAC ${mac} (next hop from ${cur.name} on ${where(ns)}): the packet leaves what cnilab can see` };
    const underlay = familyOf(w.tunnel?.dst ?? w.dst) === 6 ? w.model.underlayV6 : w.model.underlay;
    const across = underlay ? `the underlay ${underlay}` : 'the wire';
    w.hop({ at: owner.ns.id, kind: 'wire', text: `across ${across}: ${where(ns)} ${cur.name} → ${where(owner.ns)} ${owner.link.label} (${mac})`, device: owner.link.name });
    return { ns: owner.ns, iif: owner.link.name };
  }
  return { problem: `layer 2 from ${out.name} on ${where(start)} went round in circles` };
}

/** A TUN device hands the packet to the process that holds it open, which sends it in UDP to the node that serves the destination. */
function intoTun(w: Walk, ns: NsView, tun: LinkView, dst: string): { tunnel: Tunnel } | { problem: string } {
  if (w.tunnel) return { problem: `${where(ns)} routes the tunnel packet for ${w.tunnel.dst} into ${tun.name} again: a tunnel inside itself` };
  const owner = tun.tunOwners?.[0];
  const target = nodeServing(w.model, dst, ns.id);
  if (!target) return { problem: `${tun.name} on ${where(ns)} is a TUN device, and no other node has ${dst} on a connected network` };
  const local = uplinkAddress(w.model, ns) ?? '?';
  const remote = uplinkAddress(w.model, target) ?? '?';
  const port = owner?.udpPorts[0];
  const who = owner ? `${owner.comm} (pid ${owner.pid})` : 'the process that holds it open';
  w.hop({ at: ns.id, kind: 'tun', text: `${tun.name} is a TUN device: the kernel hands the packet to ${who}, which sends it in UDP ${local} → ${remote}${port ? `:${port}` : ''} to ${where(target)}` });
  return { tunnel: { via: 'tun', src: local, dst: remote, port } };
}

/** The tunnel packet reached its node: the VXLAN device (or the TUN process) unwraps it. */
function arriveThroughTunnel(w: Walk, ns: NsView, t: Tunnel, kernel: string): Next {
  if (t.via === 'vxlan') {
    // Two devices may share VNI and port, one per family (flannel.1 and flannel-v6.1): the tunnel's family picks.
    const same = (l: LinkView) => l.vxlan?.vni === t.vni && l.vxlan?.port === t.port;
    const vx = ns.links.find((l) => same(l) && l.vxlan?.local !== undefined && familyOf(l.vxlan.local) === familyOf(t.dst)) ?? ns.links.find(same);
    if (!vx) return { problem: `${where(ns)} receives UDP ${t.port} but has no VXLAN device with VNI ${t.vni} on that port` };
    w.tunnel = undefined;
    w.hop({ at: ns.id, kind: 'decap', text: `${t.dst} is local; UDP ${t.port} goes to ${vx.name} (VNI ${t.vni}), which unwraps the pod's packet ${w.src} → ${w.dst}`, kernel, device: vx.name });
    return { ns, iif: vx.name };
  }
  const tun = ns.links.find((l) => encapsulationOf(l.kind) === 'tun' && (t.port === undefined || l.tunOwners?.some((o) => o.udpPorts.includes(t.port!)))) ?? ns.links.find((l) => encapsulationOf(l.kind) === 'tun');
  if (!tun) return { problem: `${where(ns)} receives the UDP packet but has no TUN device to write it into` };
  w.tunnel = undefined;
  const owner = tun.tunOwners?.[0];
  w.hop({ at: ns.id, kind: 'decap', text: `${t.dst} is local; ${owner ? `${owner.comm} (pid ${owner.pid})` : 'the process on'}${t.port ? ` UDP ${t.port}` : ''} unwraps it and writes ${w.src} → ${w.dst} into ${tun.name}`, kernel, device: tun.name });
  return { ns, iif: tun.name };
}
