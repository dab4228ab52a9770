// The kube-proxy agent's ebpf mode: the services written into the datapath's
// pinned lb4_* maps with bpftool, only the entries that changed, in an order
// that never lets a packet find a slot without its backend.
import { join } from 'node:path';
import { dumpMap, updateMaps, type MapChange } from '../net/bpf.js';
import type { ClusterServices } from './model.js';
import { IdAllocator, LB_MAPS, decodeLbBackend, decodeRevNat, decodeU16, decodeU32, frontendId, lbEntries, type LbMap } from './ebpf-maps.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

/** map -> key hex -> value hex */
type Programmed = Record<LbMap, Map<string, string>>;

export class EbpfServices {
  private backends = new IdAllocator(0xffffffff);
  private frontends = new IdAllocator(0xffff);
  private programmed?: Programmed;

  constructor(
    /** The directory the datapath pinned its maps in. */
    private mapsDir: string,
    /** This node's address: its NodePort frontends. */
    private nodeIp: string,
  ) {}

  private path(m: LbMap): string {
    return join(this.mapsDir, m);
  }

  /** What the maps hold now, with the IDs in use (the agent may have restarted while the datapath kept them). */
  private async readBack(): Promise<Programmed> {
    const p = {} as Programmed;
    for (const m of LB_MAPS) {
      p[m] = new Map();
      for (const e of await dumpMap(this.path(m))) {
        p[m].set(hex(e.key), hex(e.value));
        if (m === 'lb4_backends') {
          const b = decodeLbBackend(e.value);
          this.backends.adopt(frontendId(b.address, b.port, b.proto), decodeU32(e.key));
        } else if (m === 'lb4_reverse_nat') {
          const f = decodeRevNat(e.value);
          // The protocol is not in the reverse-NAT entry: a frontend's index is shared by its TCP and UDP ports.
          for (const proto of ['TCP', 'UDP']) this.frontends.adopt(frontendId(f.address, f.port, proto), decodeU16(e.key));
        }
      }
    }
    return p;
  }

  /** Write the difference; returns the number of entries the services take. */
  async sync(cluster: ClusterServices): Promise<number> {
    const before = this.programmed ?? (await this.readBack());
    this.programmed = undefined; // unknown until the writes succeed
    const entries = lbEntries(cluster.services, this.nodeIp, this.backends, this.frontends);
    const want = {} as Programmed;
    for (const m of LB_MAPS) want[m] = new Map();
    const order = new Map<string, number>();
    for (const e of entries) {
      want[e.map].set(hex(e.key), hex(e.value));
      order.set(e.map + hex(e.key), e.order);
    }
    const updates: (MapChange & { order: number })[] = [];
    const deletes: (MapChange & { order: number })[] = [];
    for (const m of LB_MAPS) {
      for (const [k, v] of want[m]) if (before[m].get(k) !== v) updates.push({ map: this.path(m), op: 'update', key: unhex(k), value: unhex(v), order: order.get(m + k)! });
      // Removal in the reverse order: slot 0 (the count) first, backends and frontends last.
      for (const k of before[m].keys()) {
        if (want[m].has(k)) continue;
        const slot0 = m === 'lb4_services' && k.slice(12, 16) === '0000';
        deletes.push({ map: this.path(m), op: 'delete', key: unhex(k), order: m === 'lb4_services' ? (slot0 ? 0 : 1) : 2 });
      }
    }
    updates.sort((a, b) => a.order - b.order);
    deletes.sort((a, b) => a.order - b.order);
    await updateMaps([...updates, ...deletes]);
    this.programmed = want;
    return LB_MAPS.reduce((n, m) => n + want[m].size, 0);
  }
}
