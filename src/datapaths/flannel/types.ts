// What the flannel agent and its backends share: the agent's options, the
// network config in etcd, a lease, and the contract of a backend.
import { formatIp, parseCidr, type Cidr } from '../../net/ipnet.js';
import type { KeyValue } from '../etcd/client.js';

export interface AgentOptions {
  etcdEndpoint: string;
  prefix: string; // /coreos.com/network
  iface: string; // the underlay device, eth0
  publicIp: string;
  subnetFile: string;
  /** wireguard backend: this node's socket directory for wireguard-go (see net/wireguard.ts). */
  wgRunDir?: string;
  log?: (msg: string) => void;
}

export interface NetworkConfig {
  Network: string;
  SubnetLen?: number;
  Backend?: { Type?: string; VNI?: number; Port?: number; Offload?: boolean };
}

export interface Lease {
  subnet: Cidr;
  publicIp: string;
  backendType: string;
  backendData: Record<string, unknown>;
}

/** The per-backend part: what the device is, and how to reach one remote lease. */
export interface FlannelBackend {
  readonly type: string;
  /** Overhead to take off the underlay MTU. */
  readonly overhead: number;
  setup(local: Cidr): Promise<Record<string, unknown>>;
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
  const v = JSON.parse(kv.value) as { PublicIP: string; BackendType?: string; BackendData?: Record<string, unknown> };
  return { subnet: parseCidr(`${m[1]}/${m[2]}`)!, publicIp: v.PublicIP, backendType: v.BackendType ?? '', backendData: v.BackendData ?? {} };
}
