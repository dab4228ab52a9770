// The datapath's maps as bytes: keys and values laid out exactly as the C
// structs in bpf/common.h (host byte order for integers, network order for
// addresses). Pure functions, so the layout is tested without a kernel.
import { endianness } from 'node:os';
import { parseAddr, parseCidr, parseIp, parsePrefix } from '../../net/ipnet.js';

const LE = endianness() === 'LE';

/** File names of the maps, pinned in <node bpffs>/cilium/maps/. */
export const MAP_NAMES = [
  'endpoints', 'remote_nodes', 'counters', 'config', 'ipcache', 'policy', 'policy_state', 'ct', 'drops', 'endpoints6', 'remote_nodes6', 'lxc_ifindex', 'ipcache6', 'ct6',
  // Services (bpf/lb.h), written by kube-proxy in ebpf mode (src/services/ebpf-maps.ts).
  'lb4_services',
  'lb4_backends',
  'lb4_reverse_nat',
  'lb4_affinity',
  'lb4_ct',
] as const;
export type MapName = (typeof MAP_NAMES)[number];

export const MODE = { native: 0, vxlan: 1 } as const;

/** struct endpoint_info */
export interface EndpointInfo {
  /** The host-side veth (lxc…) */
  ifindex: number;
  /** The pod's eth0 */
  mac: string;
  /** The lxc device's own MAC: what the pod sees as its gateway */
  nodeMac: string;
}

/** struct endpoint_counters */
export interface EndpointCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
}

/** struct node_config */
export interface NodeConfig {
  mode: keyof typeof MODE;
  tunnelIfindex: number;
  vni: number;
}

/** struct ipv4: four bytes in network order (key of endpoints and counters; value of remote_nodes). */
export function encodeIpv4(ip: string): Uint8Array {
  const n = parseIp(ip);
  if (n === undefined) throw new Error(`"${ip}" is not an IPv4 address`);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** struct ipv6: sixteen bytes in network order (key of endpoints6). */
export function encodeIpv6(ip: string): Uint8Array {
  const a = parseAddr(ip);
  if (a?.family !== 6) throw new Error(`"${ip}" is not an IPv6 address`);
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = Number((a.value >> BigInt(8 * (15 - i))) & 255n);
  return b;
}

/** struct remote_key6: the prefix length, then the IPv6 network address (ipcache6, remote_nodes6). */
export function encodeRemoteKey6(cidr: string): Uint8Array {
  const p = parsePrefix(cidr);
  if (p?.family !== 6) throw new Error(`"${cidr}" is not an IPv6 CIDR`);
  const b = new Uint8Array(20);
  new DataView(b.buffer).setUint32(0, p.prefix, LE);
  b.set(encodeIpv6(cidr.split('/')[0]), 4);
  return b;
}

/** struct remote_node6: the node's IPv6 underlay address (native routing; :: when it has none), then its IPv4 one (the tunnel). */
export function encodeRemoteNode6(address: string, addressV6?: string): Uint8Array {
  const b = new Uint8Array(20);
  if (addressV6) b.set(encodeIpv6(addressV6), 0);
  b.set(encodeIpv4(address), 16);
  return b;
}

/** The IPv4 or IPv6 key of a prefix, by its family. */
export const encodePrefixKey = (cidr: string) => (cidr.includes(':') ? encodeRemoteKey6(cidr) : encodeRemoteKey(cidr));

export function decodeIpv4(b: Uint8Array): string {
  return [...b.subarray(0, 4)].join('.');
}

function encodeMac(mac: string): number[] {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`"${mac}" is not a MAC address`);
  return parts.map((p) => parseInt(p, 16));
}

const formatMac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export function encodeEndpointInfo(e: EndpointInfo): Uint8Array {
  const b = new Uint8Array(16);
  new DataView(b.buffer).setUint32(0, e.ifindex, LE);
  b.set(encodeMac(e.mac), 4);
  b.set(encodeMac(e.nodeMac), 10);
  return b;
}

export function decodeEndpointInfo(b: Uint8Array): EndpointInfo {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { ifindex: v.getUint32(0, LE), mac: formatMac(b.subarray(4, 10)), nodeMac: formatMac(b.subarray(10, 16)) };
}

/** struct remote_key: the prefix length, then the network address. */
export function encodeRemoteKey(cidr: string): Uint8Array {
  const c = parseCidr(cidr);
  if (!c) throw new Error(`"${cidr}" is not a CIDR`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, c.prefix, LE);
  b.set(encodeIpv4(cidr.split('/')[0]), 4);
  return b;
}

export function decodeRemoteKey(b: Uint8Array): string {
  return `${decodeIpv4(b.subarray(4, 8))}/${new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, LE)}`;
}

export const ZERO_COUNTERS = new Uint8Array(32);

export function decodeCounters(b: Uint8Array): EndpointCounters {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u64 = (off: number) => Number(v.getBigUint64(off, LE));
  return { rxPackets: u64(0), rxBytes: u64(8), txPackets: u64(16), txBytes: u64(24) };
}

export const CONFIG_KEY = new Uint8Array(4);

export function encodeNodeConfig(c: NodeConfig): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, MODE[c.mode], LE);
  v.setUint32(4, c.tunnelIfindex, LE);
  v.setUint32(8, c.vni, LE);
  return b;
}

/** struct ipcache_value: a security identity (the ipcache key is a struct remote_key). */
export function encodeIdentity(identity: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, identity, LE);
  return b;
}

export const DIRECTION = { ingress: 0, egress: 1 } as const;
export const PROTOCOL_NUMBER = { ANY: 0, ICMP: 1, TCP: 6, UDP: 17, SCTP: 132 } as const;

/** struct policy_key */
export interface PolicyKey {
  ifindex: number;
  identity: number;
  /** 0: any port */
  dport: number;
  /** 0: any protocol */
  proto: number;
  dir: keyof typeof DIRECTION;
}

export function encodePolicyKey(k: PolicyKey): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, k.ifindex, LE);
  v.setUint32(4, k.identity, LE);
  v.setUint16(8, k.dport, LE);
  b[10] = k.proto;
  b[11] = DIRECTION[k.dir];
  return b;
}

export function decodePolicyKey(b: Uint8Array): PolicyKey {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { ifindex: v.getUint32(0, LE), identity: v.getUint32(4, LE), dport: v.getUint16(8, LE), proto: b[10], dir: b[11] === 1 ? 'egress' : 'ingress' };
}

/** struct policy_value: the new flows an entry let through, zero when written. */
export const ZERO_POLICY_VALUE = new Uint8Array(8);

/** A u32 key: policy_state is keyed by the endpoint's ifindex. */
export const encodeU32 = encodeIdentity;

/** struct policy_state */
export function encodePolicyState(s: { ingress: boolean; egress: boolean }): Uint8Array {
  return Uint8Array.of(s.ingress ? 1 : 0, s.egress ? 1 : 0, 0, 0);
}

/** struct drop_key and its count. */
export interface DropCount {
  ifindex: number;
  reason: number;
  dir: keyof typeof DIRECTION;
  packets: number;
}

export function decodeDrop(key: Uint8Array, value: Uint8Array): DropCount {
  const k = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return { ifindex: k.getUint32(0, LE), reason: key[4], dir: key[5] === 1 ? 'egress' : 'ingress', packets: Number(v.getBigUint64(0, LE)) };
}

/** Cilium's name for a drop reason code. */
export const DROP_REASONS: Record<number, string> = { 133: 'Policy denied' };
