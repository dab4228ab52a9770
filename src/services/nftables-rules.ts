// kube-proxy's nftables mode as data: one table, `ip kube-proxy`, where a
// service is an element of a verdict map (not a rule in a list), and an
// endpoint is picked with numgen. The first sync writes the whole table in one
// `nft -f` transaction; later ones only what changed (chains added, rewritten
// or deleted, map elements added or deleted), as kube-proxy does. Pure: the
// agent applies what this returns.
import type { ServicePort, ServiceState } from './model.js';
import { AFFINITY_SECONDS, MASQ_MARK, hashName, servicePortName } from './iptables-rules.js';

export const NFT_TABLE = 'kube-proxy';

const proto = (p: ServicePort) => p.protocol.toLowerCase();
/** "namespace/name/protocol/port-name", as kube-proxy's nftables chains are named after the service port. */
const portId = (s: ServiceState, p: ServicePort) => `${s.namespace}/${s.name}/${proto(p)}/${p.name ?? ''}`;
const hash = (s: ServiceState, p: ServicePort) => hashName(servicePortName(s, p) + proto(p), 8);
export const nftServiceChain = (s: ServiceState, p: ServicePort) => `service-${hash(s, p)}-${portId(s, p)}`;
export const nftExternalChain = (s: ServiceState, p: ServicePort) => `external-${hash(s, p)}-${portId(s, p)}`;
export const nftEndpointChain = (s: ServiceState, p: ServicePort, ip: string) =>
  `endpoint-${hashName(servicePortName(s, p) + proto(p) + `${ip}:${p.targetPort}`, 8)}-${portId(s, p)}__${ip}/${p.targetPort}`;
const affinitySet = (s: ServiceState, p: ServicePort, ip: string) => `affinity-${hashName(servicePortName(s, p) + proto(p) + `${ip}:${p.targetPort}`, 8)}-${portId(s, p)}__${ip}/${p.targetPort}`;

/** The table's contents as data, so that two syncs can be compared. */
export interface NftState {
  /** Service, endpoint and external chains by name, in declaration order (endpoints before the services that jump to them). */
  chains: Map<string, string[]>;
  /** Affinity sets by name. */
  sets: Set<string>;
  /** service-ips elements: "10.96.0.11 . tcp . 80" → "goto service-…". */
  serviceIps: Map<string, string>;
  /** service-nodeports elements: "tcp . 30080" → "goto external-…". */
  nodePorts: Map<string, string>;
}

export interface NftSync {
  script: string;
  rules: number;
}

const T = `ip ${NFT_TABLE}`;
const SET_SPEC = `type ipv4_addr; flags dynamic,timeout; timeout ${AFFINITY_SECONDS}s;`;

export function nftablesState(services: ServiceState[], podCIDR: string): NftState {
  const state: NftState = { chains: new Map(), sets: new Set(), serviceIps: new Map(), nodePorts: new Map() };
  for (const s of services) {
    if (s.clusterIP === 'None' || s.endpoints.length === 0) continue;
    for (const p of s.ports) {
      const pr = proto(p);
      const svc = nftServiceChain(s, p);
      const affinity = s.sessionAffinity === 'ClientIP';
      const eps = s.endpoints.map((e) => ({ e, chain: nftEndpointChain(s, p, e.ip), set: affinitySet(s, p, e.ip) }));
      for (const ep of eps) {
        if (affinity) state.sets.add(ep.set);
        state.chains.set(ep.chain, [
          // Hairpin: a pod reaching itself through its service must see the node as the source.
          `ip saddr ${ep.e.ip} jump mark-for-masquerade`,
          ...(affinity ? [`update @${ep.set} { ip saddr }`] : []),
          `meta l4proto ${pr} dnat to ${ep.e.ip}:${p.targetPort}`,
        ]);
      }
      const lines = [`ip daddr ${s.clusterIP} ${pr} dport ${p.port} ip saddr != ${podCIDR} jump mark-for-masquerade`];
      if (affinity) for (const ep of eps) lines.push(`ip saddr @${ep.set} goto ${ep.chain}`);
      // One random number per new connection picks the endpoint: the same cost for 1 or 1,000 of them.
      lines.push(`numgen random mod ${eps.length} vmap { ${eps.map((ep, i) => `${i} : goto ${ep.chain}`).join(', ')} }`);
      state.chains.set(svc, lines);
      state.serviceIps.set(`${s.clusterIP} . ${pr} . ${p.port}`, `goto ${svc}`);
      if (p.nodePort !== undefined) {
        const ext = nftExternalChain(s, p);
        state.chains.set(ext, ['jump mark-for-masquerade', `goto ${svc}`]);
        state.nodePorts.set(`${pr} . ${p.nodePort}`, `goto ${ext}`);
      }
    }
  }
  return state;
}

/** The fixed part: marking, masquerading, the lookups and the hooks. */
const BASE_RULES = 10;
const base = (maps: string[]) => [
  '  chain mark-for-masquerade {',
  `    meta mark set meta mark | ${MASQ_MARK}`,
  '  }',
  '  chain masquerading {',
  `    meta mark & ${MASQ_MARK} == 0 return`,
  `    meta mark set meta mark ^ ${MASQ_MARK}`,
  '    masquerade fully-random',
  '  }',
  '@@CHAINS@@',
  ...maps,
  '  chain services {',
  '    ip daddr . meta l4proto . th dport vmap @service-ips',
  '    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
  '  }',
  '  chain nat-prerouting {',
  '    type nat hook prerouting priority dstnat; policy accept;',
  '    jump services',
  '  }',
  '  chain nat-output {',
  '    type nat hook output priority -100; policy accept;',
  '    jump services',
  '  }',
  '  chain nat-postrouting {',
  '    type nat hook postrouting priority srcnat; policy accept;',
  '    jump masquerading',
  '  }',
];

const ruleCount = (st: NftState) => [...st.chains.values()].reduce((n, r) => n + r.length, 0) + BASE_RULES;

/** The whole table, replacing whatever is there, in one transaction. */
function fullScript(st: NftState): string {
  const map = (name: string, type: string, what: string, elements: Map<string, string>) => [
    `  map ${name} {`,
    `    type ${type} : verdict`,
    `    comment "${what}"`,
    ...(elements.size ? ['    elements = {', [...elements].map(([k, v]) => `      ${k} : ${v}`).join(',\n'), '    }'] : []),
    '  }',
  ];
  // Declared before use: sets, then the chains (endpoints before services), then the maps that point at them.
  const chains = [
    ...[...st.sets].map((name) => `  set ${name} { ${SET_SPEC} }`),
    ...[...st.chains].flatMap(([name, rules]) => [`  chain ${name} {`, ...rules.map((r) => `    ${r}`), '  }']),
  ];
  const lines = base([
    ...map('service-ips', 'ipv4_addr . inet_proto . inet_service', 'ClusterIP traffic', st.serviceIps),
    ...map('service-nodeports', 'inet_proto . inet_service', 'NodePort traffic', st.nodePorts),
  ]).flatMap((l) => (l === '@@CHAINS@@' ? chains : [l]));
  // Create-then-delete makes the delete safe on the first sync.
  return [`add table ${T}`, `delete table ${T}`, `table ${T} {`, '  comment "rules for kube-proxy"', ...lines, '}', ''].join('\n');
}

const same = (a: string[] | undefined, b: string[]) => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** Only what changed since `prev`, in an order where nothing is used before it exists or deleted while used. */
function diffScript(prev: NftState, next: NftState): string {
  const out: string[] = [];
  for (const set of next.sets) if (!prev.sets.has(set)) out.push(`add set ${T} ${set} { ${SET_SPEC} }`);
  for (const name of next.chains.keys()) if (!prev.chains.has(name)) out.push(`add chain ${T} ${name}`);
  for (const [name, rules] of next.chains) {
    if (same(prev.chains.get(name), rules)) continue;
    if (prev.chains.has(name)) out.push(`flush chain ${T} ${name}`);
    for (const r of rules) out.push(`add rule ${T} ${name} ${r}`);
  }
  for (const [map, p, n] of [['service-ips', prev.serviceIps, next.serviceIps], ['service-nodeports', prev.nodePorts, next.nodePorts]] as const) {
    const gone = [...p].filter(([k, v]) => n.get(k) !== v).map(([k]) => k);
    const added = [...n].filter(([k, v]) => p.get(k) !== v);
    if (gone.length) out.push(`delete element ${T} ${map} { ${gone.join(', ')} }`);
    if (added.length) out.push(`add element ${T} ${map} { ${added.map(([k, v]) => `${k} : ${v}`).join(', ')} }`);
  }
  // Removed chains may jump to each other: empty them all first, then delete them.
  const removed = [...prev.chains.keys()].filter((c) => !next.chains.has(c));
  for (const c of removed) out.push(`flush chain ${T} ${c}`);
  for (const c of removed) out.push(`delete chain ${T} ${c}`);
  for (const set of prev.sets) if (!next.sets.has(set)) out.push(`delete set ${T} ${set}`);
  return out.length ? out.join('\n') + '\n' : '';
}

/** The script that takes the table from `prev` (the last sync applied; none: replace it whole) to `next`. */
export function nftablesScript(next: NftState, prev?: NftState): NftSync {
  return { script: prev ? diffScript(prev, next) : fullScript(next), rules: ruleCount(next) };
}

/** The whole table for `services`. */
export function nftablesRules(services: ServiceState[], podCIDR: string): NftSync {
  return nftablesScript(nftablesState(services, podCIDR));
}
