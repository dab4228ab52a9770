// BIRD (Debian's bird2) for Calico's BGP mode: the configuration a node runs
// (generated here, as Calico's confd does) and the few birdc calls we need.
import { run } from '../../net/exec.js';

export interface BirdPeer {
  name: string;
  address: string;
}

export interface BirdOptions {
  node: string;
  /** The node's underlay address: router id and BGP source address. */
  address: string;
  asNumber: number;
  /** Every other node: an iBGP full mesh. */
  peers: BirdPeer[];
  /** This node's IPAM blocks, announced to the peers. */
  blocks: string[];
}

/** Calico's name for a mesh session: Mesh_192_168_10_220. */
export const meshProtocolName = (address: string) => `Mesh_${address.replaceAll('.', '_')}`;

function ipToNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function birdConfig(o: BirdOptions): string {
  const peers = [...o.peers].sort((a, b) => ipToNumber(a.address) - ipToNumber(b.address));
  const blocks = [...o.blocks].sort((a, b) => ipToNumber(a.split('/')[0]) - ipToNumber(b.split('/')[0]));
  const lines = [
    `# BIRD for node ${o.node}, written by calico-node. iBGP full mesh in AS ${o.asNumber}:`,
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
    ...blocks.map((b) => `  route ${b} blackhole;`),
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
    '',
    'filter calico_export_to_bgp_peers {',
    '  if proto = "blocks" then accept;',
    '  reject;',
    '}',
    '',
    '# Short timers so a lab sees a restarted peer within a second or two',
    '# (Calico uses connect delay 2, retry 5, error wait 5,30).',
    'template bgp mesh {',
    `  local ${o.address} as ${o.asNumber};`,
    '  direct;',
    '  connect delay time 1;',
    '  connect retry time 1;',
    '  error wait time 1, 10;',
    '  ipv4 {',
    '    import all;',
    '    export filter calico_export_to_bgp_peers;',
    '    next hop self;',
    '    gateway direct;',
    '  };',
    '}',
  ];
  for (const p of peers) {
    lines.push(
      '',
      `protocol bgp ${meshProtocolName(p.address)} from mesh {`,
      `  description "${p.name}";`,
      `  neighbor ${p.address} as ${o.asNumber};`,
      // As Calico does: of two peers, the one with the higher address waits to be called.
      ...(ipToNumber(o.address) > ipToNumber(p.address) ? ['  passive on;'] : []),
      '}',
    );
  }
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
