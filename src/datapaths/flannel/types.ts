// What the flannel agent and its backends share: the agent's options, the
// network config in etcd, a lease, and the contract of a backend.
import { formatIp, parseCidr, parsePrefix, type Cidr, type Prefix } from '../../net/ipnet.js';
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
