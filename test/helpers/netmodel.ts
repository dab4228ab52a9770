// Building raw namespace snapshots by hand (for datapaths whose labs are not in
// this tree yet: Calico-style routed veths, macvlan, a TUN device), and a
// stand-in for `ip route get` that answers from the model's own tables.
import type { FdbEntry, Link, Neighbour, Route, RouteLookup } from '../../src/net/ip.js';
import { canonicalAddr, familyOf } from '../../src/net/ipnet.js';
import { addressesOf, longestMatch, nsById, routesOf, type NetModel, type RawNamespace } from '../../src/workshop/model.js';
import type { RouteOracle } from '../../src/workshop/trace.js';

export interface LinkOpts {
  mac?: string;
  addrs?: string[];
  master?: string;
  peer?: { index: number; nsid: number };
  mtu?: number;
  data?: Record<string, unknown>;
}

export function link(ifindex: number, ifname: string, kind: string | undefined, o: LinkOpts = {}): Link {
  return {
    ifindex,
    ifname,
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: o.mtu ?? 1500,
    operstate: 'UP',
    master: o.master,
    address: o.mac,
    link_type: kind === 'tun' ? 'none' : 'ether',
    ...(o.peer ? { link_index: o.peer.index, link_netnsid: o.peer.nsid } : {}),
    ...(kind ? { linkinfo: { info_kind: kind, ...(o.data ? { info_data: o.data } : {}) } } : {}),
    addr_info: (o.addrs ?? []).map((a) => ({ family: 'inet' as const, local: a.split('/')[0], prefixlen: Number(a.split('/')[1]) })),
  };
}

export const lo = (): Link => ({ ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP'], mtu: 65536, operstate: 'UNKNOWN', link_type: 'loopback', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] });

export function ns(kind: 'node' | 'pod', name: string, node: string, parts: { links: Link[]; routes?: Route[]; neighbours?: Neighbour[]; fdb?: FdbEntry[]; nsids?: { nsid: number; name?: string }[] }): RawNamespace {
  return {
    kind,
    name,
    node,
    netns: `/run/netns/t-${kind === 'pod' ? `pod-${name}` : name}`,
    links: [lo(), ...parts.links],
    routes: parts.routes ?? [],
    neighbours: parts.neighbours ?? [],
    fdb: parts.fdb ?? [],
    nsids: parts.nsids ?? [],
  };
}

export const kernelRoute = (dst: string, dev: string, src: string): Route => ({ dst, dev, protocol: 'kernel', scope: 'link', prefsrc: src, flags: [] });

/** `ip route get` as the kernel would answer from these tables: local addresses first, then the longest prefix. */
export function tableOracle(model: NetModel): RouteOracle {
  return {
    async routeGet(id, dst) {
      const n = nsById(model, id)!;
      const family = familyOf(dst) ?? 4;
      if (n.links.some((l) => addressesOf(l, family).some((a) => canonicalAddr(a.split('/')[0]) === canonicalAddr(dst)))) return { type: 'local', dst, dev: 'lo' } as RouteLookup;
      const r = longestMatch(routesOf(n, family), dst);
      if (!r) throw new Error('RTNETLINK answers: Network is unreachable');
      return { type: 'unicast', dst, gateway: r.gateway, dev: r.dev } as RouteLookup;
    },
  };
}
