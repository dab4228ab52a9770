// kube-proxy's work done the eBPF way, as Cilium's kube-proxy replacement does
// it: the services as entries of the datapath's lb4_* maps (bpf/lb.h), laid out
// byte for byte. A frontend (ClusterIP or node address, port, protocol) has a
// slot 0 holding its backend count and flags, and slots 1..count each naming a
// backend ID; lb4_backends maps an ID to a pod's address and port;
// lb4_reverse_nat maps a frontend's index back to it for replies. Pure: the
// agent diffs what this returns against the maps and writes the difference.
import { endianness } from 'node:os';
import { parseIp } from '../net/ipnet.js';
import { AFFINITY_SECONDS } from './iptables-rules.js';
import type { ServiceState } from './model.js';

const LE = endianness() === 'LE';

/** The maps, pinned by the datapath under these names. */
export const LB_MAPS = ['lb4_services', 'lb4_backends', 'lb4_reverse_nat'] as const;
export type LbMap = (typeof LB_MAPS)[number];
/** Maps the datapath fills itself (connections and client affinity); read-only here. */
export const LB_RUNTIME_MAPS = ['lb4_ct', 'lb4_affinity'] as const;

export const SVC_FLAG = { nodePort: 1, affinity: 2 } as const;
const PROTO = { TCP: 6, UDP: 17 } as const;

function ip4(addr: string): number[] {
  const n = parseIp(addr);
  if (n === undefined) throw new Error(`"${addr}" is not an IPv4 address`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** struct lb4_key */
export function encodeLbKey(address: string, port: number, proto: 'TCP' | 'UDP', slot: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  b.set(ip4(address), 0);
  v.setUint16(4, port, LE);
  v.setUint16(6, slot, LE);
  b[8] = PROTO[proto];
  return b;
}

/** struct lb4_service: slot 0 (count, flags, affinity timeout in backend_id) or a backend slot. */
export function encodeLbService(s: { backendId: number; count: number; revNat: number; flags: number }): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, s.backendId, LE);
  v.setUint16(4, s.count, LE);
  v.setUint16(6, s.revNat, LE);
  b[8] = s.flags;
  return b;
}

/** struct lb4_backend */
export function encodeLbBackend(address: string, port: number, proto: 'TCP' | 'UDP'): Uint8Array {
  const b = new Uint8Array(8);
  b.set(ip4(address), 0);
  new DataView(b.buffer).setUint16(4, port, LE);
  b[6] = PROTO[proto];
  return b;
}

/** struct lb4_reverse_nat (also the layout of a frontend's address and port) */
export function encodeRevNat(address: string, port: number): Uint8Array {
  const b = new Uint8Array(8);
  b.set(ip4(address), 0);
  new DataView(b.buffer).setUint16(4, port, LE);
  return b;
}

export const encodeU32Key = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, LE);
  return b;
};
export const encodeU16Key = (n: number) => {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, LE);
  return b;
};

export function decodeLbBackend(b: Uint8Array): { address: string; port: number; proto: 'TCP' | 'UDP' } {
  return { address: [...b.subarray(0, 4)].join('.'), port: new DataView(b.buffer, b.byteOffset).getUint16(4, LE), proto: b[6] === 17 ? 'UDP' : 'TCP' };
}

export function decodeRevNat(b: Uint8Array): { address: string; port: number } {
  return { address: [...b.subarray(0, 4)].join('.'), port: new DataView(b.buffer, b.byteOffset).getUint16(4, LE) };
}

export const decodeU32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(0, LE);
export const decodeU16 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint16(0, LE);

/** A frontend as one string: "10.96.0.11:80/TCP". */
export const frontendId = (address: string, port: number, proto: string) => `${address}:${port}/${proto}`;

/** Stable small numbers for backends and frontends, kept across syncs (and read back from the maps after a restart). */
export class IdAllocator {
  private ids = new Map<string, number>();
  private next = 1;
  constructor(private max: number) {}
  get(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      if (this.next > this.max) throw new Error(`no ID left for ${name} (at most ${this.max})`);
      id = this.next++;
      this.ids.set(name, id);
    }
    return id;
  }
  adopt(name: string, id: number): void {
    this.ids.set(name, id);
    this.next = Math.max(this.next, id + 1);
  }
}

export interface LbEntry {
  map: LbMap;
  key: Uint8Array;
  value: Uint8Array;
  /** For the order of writes: backends and frontends first, backend slots next, slot 0 (the count) last. */
  order: number;
}

/** Every map entry for the services, NodePorts on this node's address. */
export function lbEntries(services: ServiceState[], nodeIp: string, backends: IdAllocator, frontends: IdAllocator): LbEntry[] {
  const out: LbEntry[] = [];
  for (const s of services) {
    if (s.clusterIP === 'None') continue; // headless: DNS only
    for (const p of s.ports) {
      const ids = s.endpoints.map((e) => {
        const id = backends.get(frontendId(e.ip, p.targetPort, p.protocol));
        out.push({ map: 'lb4_backends', key: encodeU32Key(id), value: encodeLbBackend(e.ip, p.targetPort, p.protocol), order: 0 });
        return id;
      });
      const fronts: [string, number, number][] = [[s.clusterIP, p.port, 0]];
      if (s.type === 'NodePort' && p.nodePort !== undefined) fronts.push([nodeIp, p.nodePort, SVC_FLAG.nodePort]);
      for (const [addr, port, flag] of fronts) {
        const revNat = frontends.get(frontendId(addr, port, p.protocol));
        const flags = flag | (s.sessionAffinity === 'ClientIP' ? SVC_FLAG.affinity : 0);
        out.push({ map: 'lb4_reverse_nat', key: encodeU16Key(revNat), value: encodeRevNat(addr, port), order: 0 });
        ids.forEach((id, i) => out.push({ map: 'lb4_services', key: encodeLbKey(addr, port, p.protocol, i + 1), value: encodeLbService({ backendId: id, count: 0, revNat, flags: 0 }), order: 1 }));
        const timeout = s.sessionAffinity === 'ClientIP' ? AFFINITY_SECONDS : 0;
        out.push({ map: 'lb4_services', key: encodeLbKey(addr, port, p.protocol, 0), value: encodeLbService({ backendId: timeout, count: ids.length, revNat, flags }), order: 2 });
      }
    }
  }
  return out;
}
