// BIRD (Debian's bird2) for Calico's BGP mode: the configuration a node runs
// (generated here, as Calico's confd does) and the few birdc calls we need.
import { run } from '../../net/exec.js';
import { parseAddr } from '../../net/ipnet.js';

export interface BirdPeer {
  name: string;
  address: string;
  /** Dual-stack: its IPv6 underlay address, the other end of the IPv6 session. */
  address6?: string;
  /** Set when the peer is a route reflector (Calico's Node spec.bgp.routeReflectorClusterID). */
  routeReflectorClusterID?: string;
}

export interface BirdOptions {
  node: string;
  /** The node's underlay address: router id and BGP source address. */
  address: string;
  asNumber: number;
  /** Every other node: an iBGP full mesh. */
  peers: BirdPeer[];
  /** This node's IPAM blocks of either family, announced to the peers. */
  blocks: string[];
  /** Dual-stack: the node's IPv6 underlay address; the IPv6 blocks go over sessions between these. */
  address6?: string;
  /** This node is a route reflector with this cluster id. */
  routeReflectorClusterID?: string;
}

/** Calico's name for a mesh session: Mesh_192_168_10_220, and over IPv6 Mesh_fd00_192_168_10__220. */
export const meshProtocolName = (address: string) => `Mesh_${address.replaceAll(/[.:]/g, '_')}`;

/** Calico's name for a session from a BGPPeer (here: to or from a route reflector): Node_192_168_10_210. */
export const peerProtocolName = (address: string) => `Node_${address.replaceAll(/[.:]/g, '_')}`;

/**
 * Who a node holds BGP sessions with. No reflector in the cluster: every other node (the
 * node-to-node mesh). With reflectors the mesh is off, as Calico's docs set it up (BGPConfiguration
 * nodeToNodeMeshEnabled false, a BGPPeer from all() to the reflectors): a reflector peers with every
 * other node, any other node with the reflectors only.
 */
export function bgpPeersOf<T extends { routeReflectorClusterID?: string }>(self: { routeReflectorClusterID?: string }, others: T[]): { mesh: boolean; peers: T[] } {
  if (!self.routeReflectorClusterID && !others.some((p) => p.routeReflectorClusterID)) return { mesh: true, peers: others };
  return { mesh: false, peers: self.routeReflectorClusterID ? others : others.filter((p) => p.routeReflectorClusterID) };
}

/** A session to a route reflector, or on a reflector to a node; on the reflector a client unless it shares the cluster id. */
function reflectorSession(template: string, self: BirdOptions, peer: BirdPeer): string[] {
  const client = self.routeReflectorClusterID && peer.routeReflectorClusterID !== self.routeReflectorClusterID;
  return [
    '',
    `protocol bgp ${peerProtocolName(peer.address)} from ${template} {`,
    `  description "${peer.name}";`,
    `  neighbor ${peer.address} as ${self.asNumber};`,
    ...(client ? ['  rr client;', `  rr cluster id ${self.routeReflectorClusterID};`] : []),
    '}',
  ];
}

/** A session of the mesh: one per peer, and with dual-stack a second one over IPv6. */
function meshSession(template: string, own: string, peer: BirdPeer, address: string, asNumber: number): string[] {
  return [
    '',
    `protocol bgp ${meshProtocolName(address)} from ${template} {`,
    `  description "${peer.name}";`,
    `  neighbor ${address} as ${asNumber};`,
    // As Calico does: of two peers, the one with the higher address waits to be called.
    ...(compareAddresses(own, address) > 0 ? ['  passive on;'] : []),
    '}',
  ];
}

function compareAddresses(a: string, b: string): number {
  const [x, y] = [parseAddr(a)!, parseAddr(b)!];
  return x.family - y.family || (x.value < y.value ? -1 : x.value > y.value ? 1 : 0);
}

function meshTemplate(name: string, local: string, asNumber: number, channel: 'ipv4' | 'ipv6', reflector = false): string[] {
  return [
    `template bgp ${name} {`,
    `  local ${local} as ${asNumber};`,
    '  direct;',
    '  connect delay time 1;',
    '  connect retry time 1;',
    '  error wait time 1, 10;',
    `  ${channel} {`,
    '    import all;',
    // A reflector passes on what its clients announce, with the originator's next hop.
    ...(reflector ? ['    export where proto = "blocks" || source = RTS_BGP;'] : ['    export filter calico_export_to_bgp_peers;', '    next hop self;']),
    '    gateway direct;',
    '  };',
    '}',
  ];
}

export function birdConfig(o: BirdOptions): string {
  const peers = [...o.peers].sort((a, b) => compareAddresses(a.address, b.address));
  const bgp = bgpPeersOf(o, peers);
  const blocks = [...o.blocks].sort((a, b) => compareAddresses(a.split('/')[0], b.split('/')[0]));
  const blocks4 = blocks.filter((b) => !b.includes(':'));
  const blocks6 = blocks.filter((b) => b.includes(':'));
  const lines = [
    bgp.mesh
      ? `# BIRD for node ${o.node}, written by calico-node. iBGP full mesh in AS ${o.asNumber}:`
      : o.routeReflectorClusterID
        ? `# BIRD for node ${o.node}, written by calico-node. Route reflector (cluster id ${o.routeReflectorClusterID}) in AS ${o.asNumber}:`
        : `# BIRD for node ${o.node}, written by calico-node. iBGP to the route reflectors only, AS ${o.asNumber}:`,
    '# each node announces its IPAM blocks and installs the other nodes\' blocks',
    '# into the kernel, where they show up as `proto bird`.',
    'log stderr all;',
    `router id ${o.address};`,
    '',
    '# Interfaces and addresses, for reaching directly connected peers. The short',
    '# scan also wakes BIRD\'s main loop every second: BIRD 2.0 otherwise sleeps up',
    '# to 3 s before sending the first UPDATE of a new session.',
    'protocol device {',
    '  scan time 1;',
    '}',
    '',
    '# This node\'s blocks as blackholes: on this node the /32 of each local pod is',
    '# more specific and wins; the peers learn the block and route it here.',
    'protocol static blocks {',
    '  ipv4;',
    ...blocks4.map((b) => `  route ${b} blackhole;`),
    '}',
    '',
    '# Into the kernel: our blackholes and what the peers announce; nothing learned',
    '# from it. No `persist`: when BIRD stops, its routes go with it.',
    'protocol kernel {',
    '  metric 0;',
    '  ipv4 {',
    '    import none;',
    '    export where proto = "blocks" || source = RTS_BGP;',
    '  };',
    '}',
  ];
  if (o.address6) {
    lines.push(
      '',
      '# Dual-stack: what Calico\'s second daemon (bird6) does, in the same BIRD 2 -',
      '# the IPv6 blocks (/122) as blackholes, their own kernel channel, and a second',
      '# session per peer between the IPv6 underlay addresses with an ipv6 channel.',
      'protocol static blocks6 {',
      '  ipv6;',
      ...blocks6.map((b) => `  route ${b} blackhole;`),
      '}',
      '',
      'protocol kernel kernel6 {',
      '  metric 0;',
      '  ipv6 {',
      '    import none;',
      '    export where proto = "blocks6" || source = RTS_BGP;',
      '  };',
      '}',
    );
  }
  lines.push(
    '',
    'filter calico_export_to_bgp_peers {',
    '  if proto = "blocks" || proto = "blocks6" then accept;',
    '  reject;',
    '}',
    '',
    '# Short timers so a lab sees a restarted peer within a second or two',
    '# (Calico uses connect delay 2, retry 5, error wait 5,30).',
    ...meshTemplate('mesh', o.address, o.asNumber, 'ipv4', !!o.routeReflectorClusterID),
  );
  if (!bgp.mesh) {
    for (const p of bgp.peers) lines.push(...reflectorSession('mesh', o, p));
    return lines.join('\n') + '\n';
  }
  if (o.address6) lines.push('', ...meshTemplate('mesh6', o.address6, o.asNumber, 'ipv6'));
  for (const p of peers) lines.push(...meshSession('mesh', o.address, p, p.address, o.asNumber));
  for (const p of peers) if (o.address6 && p.address6) lines.push(...meshSession('mesh6', o.address6, p, p.address6, o.asNumber));
  return lines.join('\n') + '\n';
}

export interface BirdProtocol {
  name: string;
  proto: string;
  table: string;
  state: string;
  since: string;
  info: string;
}

/** The table `birdc show protocols` prints. */
export function parseProtocols(text: string): BirdProtocol[] {
  const rows: BirdProtocol[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*(.*)$/.exec(line.trimEnd());
    if (!m || m[1] === 'Name' || line.startsWith('BIRD ')) continue;
    rows.push({ name: m[1], proto: m[2], table: m[3], state: m[4], since: m[5], info: m[6].trim() });
  }
  return rows;
}

/** birdc against one BIRD's control socket. */
export async function birdc(socket: string, ...args: string[]): Promise<string> {
  return (await run(['birdc', '-s', socket, ...args])).stdout;
}
