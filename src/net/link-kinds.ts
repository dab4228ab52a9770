// The kernel's link kinds, in one table: whether a kind is a tunnel (it carries
// traffic between nodes inside another packet, or through a process), whether it
// hangs off a parent device (and so bypasses the node's routing), how to try one
// in a scratch namespace, and how the trace follows a packet into it. Preflight,
// the diagram, the report's topology, the trace and the bench's path all ask here.
import type { Link } from './ip.js';

/** How a packet entering this kind of device leaves the node. */
export type Encapsulation = 'vxlan' | 'tun' | 'ip-in-ip';

export interface LinkKind {
  tunnel: boolean;
  /** A child of a parent device that talks to the wire directly (macvlan, ipvlan, vlan). */
  attached: boolean;
  /** `ip` arguments that make one, named `dev`, on a `parent` bridge: the kernel's own answer to "do you have this?". */
  probe?: (dev: string, parent: string) => string[];
  encapsulation?: Encapsulation;
}

const plain: LinkKind = { tunnel: false, attached: false };

export const LINK_KINDS: Record<string, LinkKind> = {
  ether: plain,
  loopback: plain,
  veth: { ...plain, probe: (d) => ['link', 'add', d, 'type', 'veth', 'peer', 'name', `${d}p`] },
  bridge: { ...plain, probe: (d) => ['link', 'add', d, 'type', 'bridge'] },
  dummy: { ...plain, probe: (d) => ['link', 'add', d, 'type', 'dummy'] },
  macvlan: { tunnel: false, attached: true, probe: (d, p) => ['link', 'add', d, 'link', p, 'type', 'macvlan', 'mode', 'bridge'] },
  ipvlan: { tunnel: false, attached: true, probe: (d, p) => ['link', 'add', d, 'link', p, 'type', 'ipvlan'] },
  vlan: { tunnel: false, attached: true, probe: (d, p) => ['link', 'add', d, 'link', p, 'type', 'vlan', 'id', '10'] },
  vxlan: { tunnel: true, attached: false, encapsulation: 'vxlan', probe: (d) => ['link', 'add', d, 'type', 'vxlan', 'id', '42', 'dstport', '8472'] },
  tun: { tunnel: true, attached: false, encapsulation: 'tun', probe: (d) => ['tuntap', 'add', 'dev', d, 'mode', 'tun'] },
  ipip: { tunnel: true, attached: false, encapsulation: 'ip-in-ip', probe: (d) => ['link', 'add', d, 'type', 'ipip', 'remote', '192.0.2.1'] },
  sit: { tunnel: true, attached: false, encapsulation: 'ip-in-ip', probe: (d) => ['link', 'add', d, 'type', 'sit', 'remote', '192.0.2.1'] },
  gre: { tunnel: true, attached: false, encapsulation: 'ip-in-ip', probe: (d) => ['link', 'add', d, 'type', 'gre', 'remote', '192.0.2.1'] },
  geneve: { tunnel: true, attached: false, probe: (d) => ['link', 'add', d, 'type', 'geneve', 'id', '1', 'remote', '192.0.2.1'] },
  wireguard: { tunnel: true, attached: false, probe: (d) => ['link', 'add', d, 'type', 'wireguard'] },
};

/** A link's kind as `ip -d -json link` tells it; a TUN device reports no kind, only link_type none. */
export function kindOf(l: Pick<Link, 'linkinfo' | 'link_type'>): string {
  return l.linkinfo?.info_kind ?? (l.link_type === 'loopback' ? 'loopback' : l.link_type === 'none' ? 'tun' : 'ether');
}

export const isTunnel = (kind: string) => LINK_KINDS[kind]?.tunnel ?? false;
export const isAttached = (kind: string) => LINK_KINDS[kind]?.attached ?? false;
export const encapsulationOf = (kind: string): Encapsulation | undefined => LINK_KINDS[kind]?.encapsulation;
