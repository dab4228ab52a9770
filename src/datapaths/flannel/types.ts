// What the flannel agent and its backends share: the agent's options, the
// network config in etcd, a lease, and the contract of a backend.
import { formatCidr, formatIp, formatPrefix, network, parseCidr, parsePrefix, subprefix, type Cidr, type Prefix } from '../../net/ipnet.js';
import type { KeyValue } from '../etcd/client.js';

export interface AgentOptions {
  etcdEndpoint: string;
  prefix: string; // /coreos.com/network
  iface: string; // the underlay device, eth0
  publicIp: string;
  /** flanneld --public-ipv6: this node's IPv6 underlay address (dual-stack). */
  publicIpv6?: string;
  subnetFile: string;
  /** wireguard backend: this node's socket directory for wireguard-go (see net/wireguard.ts). */
  wgRunDir?: string;
  /** The agent runs in the node's namespace as a process of its own: keep an ip running there while the datapath changes. */
  keepIp?: boolean;
  log?: (msg: string) => void;
}

export interface NetworkConfig {
  Network: string;
  SubnetLen?: number;
  /** flannel's dual-stack settings: an IPv6 lease beside the IPv4 one. */
  EnableIPv6?: boolean;
  IPv6Network?: string;
  IPv6SubnetLen?: number;
  Backend?: { Type?: string; VNI?: number; Port?: number; Offload?: boolean };
}

export interface Lease {
  subnet: Cidr;
  publicIp: string;
  backendType: string;
  backendData: Record<string, unknown>;
  /** Dual-stack: the node's IPv6 subnet, its IPv6 underlay address, and the backend's data for IPv6. */
  ipv6Subnet?: Prefix;
  publicIpv6?: string;
  backendV6Data?: Record<string, unknown>;
}

/** The per-backend part: what the device is, and how to reach one remote lease. */
export interface FlannelBackend {
  readonly type: string;
  /** Overhead to take off the underlay MTU. */
  readonly overhead: number;
  setup(local: Cidr): Promise<Record<string, unknown>>;
  /** Dual-stack: the IPv6 side (flannel-v6.<VNI> for vxlan); absent where the backend carries IPv4 only. */
  setupV6?(local: Prefix): Promise<Record<string, unknown>>;
  /** Commands (ip batch lines, bridge fdb lines) that make `remote` reachable. */
  addRemote(remote: Lease): { ip: string[][]; bridge: string[][] };
  removeRemote(remote: Lease): { ip: string[][]; bridge: string[][] };
  /** Which implementation carries the device, when there is a choice (wireguard: kernel or wireguard-go). */
  readonly implementation?: string;
  /** Peers kept outside the routing tables (wireguard): set to exactly these remotes. */
  syncPeers?(remotes: Lease[]): Promise<void>;
  /** Release what lives in this process (threads, file descriptors); returns a line for the log. */
  stop?(): Promise<string | void>;
}

export const subnetKey = (prefix: string, s: Cidr) => `${prefix}/subnets/${formatIp(s.ip)}-${s.prefix}`;

export function parseLease(kv: KeyValue, prefix: string): Lease | undefined {
  const m = kv.key.slice(`${prefix}/subnets/`.length).match(/^(\d+\.\d+\.\d+\.\d+)-(\d+)$/);
  if (!m) return undefined;
  const v = JSON.parse(kv.value) as LeaseValue;
  const lease: Lease = { subnet: parseCidr(`${m[1]}/${m[2]}`)!, publicIp: v.PublicIP, backendType: v.BackendType ?? '', backendData: v.BackendData ?? {} };
  const v6 = v.IPv6Subnet ? parsePrefix(v.IPv6Subnet) : undefined;
  if (v6) Object.assign(lease, { ipv6Subnet: v6, publicIpv6: v.PublicIPv6, backendV6Data: v.BackendV6Data ?? {} });
  return lease;
}

/** A lease as stored in etcd: flannel's LeaseAttrs, with the IPv6 subnet beside the IPv4 one in the key. */
export interface LeaseValue {
  PublicIP: string;
  BackendType?: string;
  BackendData?: Record<string, unknown>;
  PublicIPv6?: string;
  IPv6Subnet?: string;
  BackendV6Data?: Record<string, unknown>;
}

/** Dual-stack (EnableIPv6): the IPv6 subnet that goes with IPv4 subnet `s`, the nth /64 for the nth /24. */
export function ipv6SubnetFor(config: NetworkConfig, s: Cidr): Prefix | undefined {
  if (!config.EnableIPv6) return undefined;
  const net = parseCidr(config.Network);
  const net6 = parsePrefix(config.IPv6Network ?? '');
  if (!net) throw new Error(`network config: Network "${config.Network}" is not a CIDR`);
  if (net6?.family !== 6) throw new Error(`network config: IPv6Network "${config.IPv6Network}" is not an IPv6 CIDR`);
  const len = config.SubnetLen ?? 24;
  return subprefix(net6, config.IPv6SubnetLen ?? 64, (network(s) - network(net)) / 2 ** (32 - len));
}

/**
 * A node's lease before its backend is set up (no backend data yet): what the
 * agent writes when it claims a subnet, and what the installer writes for
 * every node up front. Both families when the network enables IPv6.
 */
export function claimLease(config: NetworkConfig, s: Cidr, publicIp: string, publicIpv6?: string): LeaseValue {
  const v6 = ipv6SubnetFor(config, s);
  return { PublicIP: publicIp, BackendType: config.Backend?.Type ?? 'vxlan', BackendData: {}, ...(v6 ? { PublicIPv6: publicIpv6, IPv6Subnet: formatPrefix(v6) } : {}) };
}

/** Every field of a lease the backends program from, as one string: a lease is reprogrammed when it changes. */
export function leaseFingerprint(l: Lease): string {
  return JSON.stringify([
    formatCidr(l.subnet),
    l.publicIp,
    l.backendType,
    l.backendData,
    l.ipv6Subnet ? formatPrefix(l.ipv6Subnet) : null,
    l.publicIpv6 ?? null,
    l.backendV6Data ?? null,
  ]);
}
