// Calico's datastore in etcd: IP pools, nodes and IPAM blocks, under the key
// names Calico itself uses (etcdv3 datastore). The IPAM plugin and the node
// agent share it; every write that others may race with is a compare-and-swap.
import { Etcd, type KeyValue } from '../etcd/client.js';

export const POOLS_PREFIX = '/calico/resources/v3/projectcalico.org/ippools/';
export const NODES_PREFIX = '/calico/resources/v3/projectcalico.org/nodes/';
/** Blocks of either family: Calico keeps them under .../assignment/ipv4/block/ and .../ipv6/block/. */
export const ASSIGNMENT_PREFIX = '/calico/ipam/v2/assignment/';
export const BLOCKS_PREFIX = ASSIGNMENT_PREFIX + 'ipv4/block/';
export const BLOCKS_PREFIX_V6 = ASSIGNMENT_PREFIX + 'ipv6/block/';
const isBlockKey = (key: string) => key.startsWith(BLOCKS_PREFIX) || key.startsWith(BLOCKS_PREFIX_V6);

export type EncapMode = 'Always' | 'Never';

export interface IpPool {
  name: string;
  cidr: string;
  /** Prefix length of the blocks a node claims: 26 gives 64 addresses per block, as 122 does for IPv6. */
  blockSize: number;
  vxlanMode: EncapMode;
  ipipMode: EncapMode;
}

export interface CalicoNode {
  name: string;
  /** The node's underlay address with its prefix, as calico-node registers it: 192.168.10.210/24. */
  ipv4Address: string;
  /** Dual-stack: its IPv6 underlay address, fd00:192:168:10::210/64 (BGP over IPv6 peers with it). */
  ipv6Address?: string;
  asNumber?: number;
  /** Set on a route reflector: its cluster id, as Calico's Node spec.bgp.routeReflectorClusterID. */
  routeReflectorClusterID?: string;
  ipv4VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  /** Dual-stack VXLAN: the IPv6 VTEP (vxlan-v6.calico) and its MAC, as Calico's Node names them. */
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  ipv4IPIPTunnelAddr?: string;
}

export interface Allocation {
  /** Who holds the address: `<network>.<container id>` for a pod, `vxlan-tunnel-addr-<node>` for a tunnel. */
  handle: string;
  attrs?: Record<string, string>;
}

/** An IPAM block: a slice of a pool with an affinity to one node, and who holds which address in it. */
export interface Block {
  cidr: string;
  /** `host:<node>` */
  affinity: string;
  /** Keyed by ordinal (address minus the block's first address). */
  allocations: Record<string, Allocation>;
}

export interface Versioned<T> {
  value: T;
  revision: number;
}

/** What the block allocator needs from a datastore; the unit tests give it one in memory. */
export interface IpamStore {
  pools(): Promise<IpPool[]>;
  blocks(): Promise<Versioned<Block>[]>;
  /** Claim a block nobody has claimed; false when someone was first. */
  createBlock(block: Block): Promise<boolean>;
  /** Write a block back only if it is unchanged since `revision`; false on a conflict. */
  updateBlock(block: Block, revision: number): Promise<boolean>;
}

export const blockKey = (cidr: string) => (cidr.includes(':') ? BLOCKS_PREFIX_V6 : BLOCKS_PREFIX) + cidr.replace('/', '-');
export const affinityOf = (node: string) => `host:${node}`;

export function poolResource(p: IpPool) {
  return {
    kind: 'IPPool',
    apiVersion: 'projectcalico.org/v3',
    metadata: { name: p.name },
    spec: { cidr: p.cidr, blockSize: p.blockSize, vxlanMode: p.vxlanMode, ipipMode: p.ipipMode, natOutgoing: false, nodeSelector: 'all()' },
  };
}

function nodeResource(n: CalicoNode) {
  const { name, ipv4Address, ipv6Address, asNumber, routeReflectorClusterID, ...tunnels } = n;
  const bgp = { ipv4Address, ...(ipv6Address ? { ipv6Address } : {}), ...(asNumber ? { asNumber } : {}), ...(routeReflectorClusterID ? { routeReflectorClusterID } : {}) };
  return { kind: 'Node', apiVersion: 'projectcalico.org/v3', metadata: { name }, spec: { bgp, ...tunnels } };
}

function parsePool(kv: KeyValue): IpPool {
  const r = JSON.parse(kv.value) as ReturnType<typeof poolResource>;
  return { name: r.metadata.name, cidr: r.spec.cidr, blockSize: r.spec.blockSize ?? 26, vxlanMode: r.spec.vxlanMode ?? 'Never', ipipMode: r.spec.ipipMode ?? 'Never' };
}

function parseNode(kv: KeyValue): CalicoNode {
  const r = JSON.parse(kv.value) as ReturnType<typeof nodeResource>;
  const { bgp, ...tunnels } = r.spec;
  return { name: r.metadata.name, ipv4Address: bgp.ipv4Address, ...(bgp.ipv6Address ? { ipv6Address: bgp.ipv6Address } : {}), ...(bgp.asNumber ? { asNumber: bgp.asNumber } : {}), ...(bgp.routeReflectorClusterID ? { routeReflectorClusterID: bgp.routeReflectorClusterID } : {}), ...tunnels };
}

const parseBlock = (kv: KeyValue): Versioned<Block> => ({ value: JSON.parse(kv.value) as Block, revision: kv.modRevision });

export class EtcdCalicoStore implements IpamStore {
  readonly etcd: Etcd;
  constructor(endpoint: string) {
    this.etcd = new Etcd(endpoint);
  }

  async pools(): Promise<IpPool[]> {
    return (await this.etcd.list(POOLS_PREFIX)).kvs.map(parsePool);
  }

  /** Nodes and blocks in one read, and the revision it was read at (a watch from revision + 1 misses nothing). */
  async snapshot(): Promise<{ nodes: CalicoNode[]; blocks: Versioned<Block>[]; revision: number; kvs: KeyValue[] }> {
    const { kvs, revision } = await this.etcd.list('/calico/');
    return {
      kvs,
      nodes: kvs.filter((kv) => kv.key.startsWith(NODES_PREFIX)).map(parseNode),
      blocks: kvs.filter((kv) => isBlockKey(kv.key)).map(parseBlock),
      revision,
    };
  }

  async putNode(n: CalicoNode): Promise<void> {
    await this.etcd.put(NODES_PREFIX + n.name, JSON.stringify(nodeResource(n)));
  }

  async blocks(): Promise<Versioned<Block>[]> {
    const { kvs } = await this.etcd.list(ASSIGNMENT_PREFIX);
    return kvs.filter((kv) => isBlockKey(kv.key)).map(parseBlock);
  }

  createBlock(block: Block): Promise<boolean> {
    return this.etcd.createIfAbsent(blockKey(block.cidr), JSON.stringify(block));
  }

  updateBlock(block: Block, revision: number): Promise<boolean> {
    return this.etcd.putIfUnchanged(blockKey(block.cidr), JSON.stringify(block), revision);
  }
}
