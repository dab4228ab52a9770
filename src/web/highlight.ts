// Which parts of the SVG diagram a traced packet passed, hop by hop: the ids
// render-svg.ts gives its groups (pod-<pod>, if-<node>-<dev>, bridge-<node>-<br>,
// dev-<node>-<dev>, routes-<node>, uplink-<node>, tunnel-<a>-<b>, underlay).
import type { TraceReport } from '../workshop/trace-run.js';
import { nsById, uplink, type NetModel } from '../workshop/model.js';

export interface LitHop {
  /** Ids of the diagram's groups this hop lights (those the drawing has). */
  ids: string[];
  at: string;
  kind: string;
  text: string;
  device?: string;
  packets?: number;
}

export function highlightTrace(model: NetModel, r: TraceReport): LitHop[] {
  const nodeOf = (at: string) => nsById(model, at)?.node ?? at;
  const nodesOnPath = [...new Set(r.hops.map((h) => nodeOf(h.at)))];
  const tunnelId = nodesOnPath.length >= 2 ? `tunnel-${nodesOnPath.slice(0, 2).sort().join('-')}` : undefined;
  return r.hops.map((h) => {
    const ns = nsById(model, h.at);
    const ids: string[] = [];
    if (ns?.kind === 'pod') ids.push(`pod-${ns.name}`);
    else if (ns) {
      const node = ns.name;
      if (h.kind === 'route' || h.kind === 'nat') ids.push(`routes-${node}`);
      if (h.device) {
        ids.push(`if-${node}-${h.device}`, `bridge-${node}-${h.device}`, `dev-${node}-${h.device}`);
        if (uplink(model, ns)?.name === h.device) ids.push(`uplink-${node}`);
      }
      if (h.kind === 'bridge') ids.push(...(ns.links.filter((l) => l.kind === 'bridge').map((l) => `bridge-${node}-${l.name}`)));
      if ((h.kind === 'encap' || h.kind === 'tun' || h.kind === 'decap') && tunnelId) ids.push(tunnelId);
      if (h.kind === 'wire') ids.push('underlay', `uplink-${node}`, ...nodesOnPath.map((n) => `uplink-${n}`));
    }
    return { ids: [...new Set(ids)], at: h.at, kind: h.kind, text: h.text, ...(h.device ? { device: h.device } : {}), ...(h.packets !== undefined ? { packets: h.packets } : {}) };
  });
}
