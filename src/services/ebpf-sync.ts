// The kube-proxy agent's ebpf mode: the services written into the datapath's
// pinned lb4_* maps with bpftool. Only services that changed are laid out
// again, and only entries that changed are written, in an order that never
// lets a packet find a slot without its backend: a change costs the same at 10
// services as at 10,000.
import { join } from 'node:path';
import { dumpMap, updateMaps, type MapChange } from '../net/bpf.js';
import type { ClusterServices, ServiceState } from './model.js';
import { IdAllocator, LB_MAPS, decodeLbBackend, decodeRevNat, decodeU16, decodeU32, frontendId, lbEntries, type LbMap } from './ebpf-maps.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

interface Entry {
  map: LbMap;
  key: string;
  value: string;
  order: number;
}

/** What the maps hold as this agent wrote them: each service's entries, and how many services share each entry (a backend). */
interface Programmed {
  services: Map<string, { sig: string; entries: Entry[] }>;
  refs: Map<string, { value: string; n: number }>;
}

/** Entries read back from the maps when the agent starts: owned by no service, dropped unless a service wants them. */
const ADOPTED = '\0adopted';

/** Everything of a service its entries depend on, cheaper to build than JSON: the whole list is compared on every sync. */
function signature(s: ServiceState): string {
  const ports = s.ports.map((p) => `${p.port},${p.targetPort},${p.nodePort},${p.protocol}`).join(';');
  return `${s.clusterIP} ${s.type} ${s.sessionAffinity} ${ports} ${s.endpoints.map((e) => e.ip).join(',')}`;
}

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
    const entries: Entry[] = [];
    for (const m of LB_MAPS) {
      for (const e of await dumpMap(this.path(m))) {
        entries.push({ map: m, key: hex(e.key), value: hex(e.value), order: 0 });
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
    const refs = new Map(entries.map((e) => [e.map + e.key, { value: e.value, n: 1 }]));
    return { services: new Map([[ADOPTED, { sig: '', entries }]]), refs };
  }

  private entriesOf(s: ServiceState): Entry[] {
    const seen = new Set<string>();
    const out: Entry[] = [];
    for (const e of lbEntries([s], this.nodeIp, this.backends, this.frontends)) {
      const key = hex(e.key);
      if (seen.has(e.map + key)) continue; // one backend behind several ports
      seen.add(e.map + key);
      out.push({ map: e.map, key, value: hex(e.value), order: e.order });
    }
    return out;
  }

  /** Write the difference; returns the number of entries the services take. */
  async sync(cluster: ClusterServices): Promise<number> {
    const p = this.programmed ?? (await this.readBack());
    this.programmed = undefined; // unknown until the writes succeed
    const updates: Entry[] = [];
    const deletes: Entry[] = [];
    const add = (entries: Entry[]) => {
      for (const e of entries) {
        const r = p.refs.get(e.map + e.key);
        if (!r) p.refs.set(e.map + e.key, { value: e.value, n: 1 });
        else r.n++;
        if (r?.value !== e.value) updates.push(e);
        if (r) r.value = e.value;
      }
    };
    const remove = (entries: Entry[]) => {
      for (const e of entries) {
        const r = p.refs.get(e.map + e.key)!;
        if (--r.n > 0) continue;
        p.refs.delete(e.map + e.key);
        deletes.push(e);
      }
    };
    const wanted = new Set<string>();
    for (const s of cluster.services) {
      const id = `${s.namespace}/${s.name}`;
      wanted.add(id);
      const sig = signature(s);
      const prev = p.services.get(id);
      if (prev?.sig === sig) continue;
      const entries = this.entriesOf(s);
      add(entries); // new entries first: a key both old and new never counts zero on the way
      if (prev) remove(prev.entries);
      p.services.set(id, { sig, entries });
    }
    for (const [id, prev] of p.services) {
      if (wanted.has(id)) continue;
      remove(prev.entries);
      p.services.delete(id);
    }
    updates.sort((a, b) => a.order - b.order);
    // Removal in the reverse order: slot 0 (the count) first, backends and frontends last.
    const delOrder = (e: Entry) => (e.map !== 'lb4_services' ? 2 : e.key.slice(12, 16) === '0000' ? 0 : 1);
    deletes.sort((a, b) => delOrder(a) - delOrder(b));
    const change = (e: Entry, op: 'update' | 'delete'): MapChange =>
      op === 'update' ? { map: this.path(e.map), op, key: unhex(e.key), value: unhex(e.value) } : { map: this.path(e.map), op, key: unhex(e.key) };
    await updateMaps([...updates.map((e) => change(e, 'update')), ...deletes.map((e) => change(e, 'delete'))]);
    this.programmed = p;
    return p.refs.size;
  }
}
