// kube-proxy's nftables mode as data: one table, `ip kube-proxy`, where a
// service is an element of a verdict map (not a rule in a list), and an
// endpoint is picked with numgen. The whole table is replaced in one `nft -f`
// transaction. Pure: the agent applies what this returns.
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

const q = (name: string) => name;

export interface NftSync {
  script: string;
  rules: number;
}

/** The whole table for `services`, replacing the previous one atomically. */
export function nftablesRules(services: ServiceState[], podCIDR: string): NftSync {
  // Declared before use: sets, then endpoint chains, then the service chains that
  // jump to them, then the maps that point at those, then the chains that read the maps.
  const sets: string[] = [];
  const endpointChains: string[] = [];
  const serviceChains: string[] = [];
  const serviceIps: string[] = [];
  const nodePorts: string[] = [];
  let rules = 0;
  const chain = (into: string[], name: string, lines: string[]) => {
    rules += lines.length;
    into.push(`  chain ${q(name)} {`, ...lines.map((l) => `    ${l}`), '  }');
  };
  for (const s of services) {
    if (s.clusterIP === 'None' || s.endpoints.length === 0) continue;
    for (const p of s.ports) {
      const pr = proto(p);
      const svc = nftServiceChain(s, p);
      serviceIps.push(`${s.clusterIP} . ${pr} . ${p.port} : goto ${q(svc)}`);
      const affinity = s.sessionAffinity === 'ClientIP';
      const eps = s.endpoints.map((e) => ({ e, chain: nftEndpointChain(s, p, e.ip), set: affinitySet(s, p, e.ip) }));
      for (const ep of eps) {
        if (affinity) sets.push(`  set ${q(ep.set)} {`, '    type ipv4_addr', '    flags dynamic,timeout', `    timeout ${AFFINITY_SECONDS}s`, '  }');
        chain(endpointChains, ep.chain, [
          // Hairpin: a pod reaching itself through its service must see the node as the source.
          `ip saddr ${ep.e.ip} jump mark-for-masquerade`,
          ...(affinity ? [`update @${q(ep.set)} { ip saddr }`] : []),
          `meta l4proto ${pr} dnat to ${ep.e.ip}:${p.targetPort}`,
        ]);
      }
      const lines = [`ip daddr ${s.clusterIP} ${pr} dport ${p.port} ip saddr != ${podCIDR} jump mark-for-masquerade`];
      if (affinity) for (const ep of eps) lines.push(`ip saddr @${q(ep.set)} goto ${q(ep.chain)}`);
      // One random number per new connection picks the endpoint: the same cost for 1 or 1,000 of them.
      lines.push(`numgen random mod ${eps.length} vmap { ${eps.map((ep, i) => `${i} : goto ${q(ep.chain)}`).join(', ')} }`);
      chain(serviceChains, svc, lines);
      if (p.nodePort !== undefined) {
        const ext = nftExternalChain(s, p);
        nodePorts.push(`${pr} . ${p.nodePort} : goto ${q(ext)}`);
        chain(serviceChains, ext, ['jump mark-for-masquerade', `goto ${q(svc)}`]);
      }
    }
  }
  const map = (name: string, type: string, what: string, elements: string[]) => [
    `  map ${name} {`,
    `    type ${type} : verdict`,
    `    comment "${what}"`,
    ...(elements.length ? [`    elements = {`, ...elements.map((e, i) => `      ${e}${i + 1 < elements.length ? ',' : ''}`), '    }'] : []),
    '  }',
  ];
  const table = [
    `table ip ${NFT_TABLE} {`,
    '  comment "rules for kube-proxy"',
    '  chain mark-for-masquerade {',
    `    meta mark set meta mark | ${MASQ_MARK}`,
    '  }',
    '  chain masquerading {',
    `    meta mark & ${MASQ_MARK} == 0 return`,
    `    meta mark set meta mark ^ ${MASQ_MARK}`,
    '    masquerade fully-random',
    '  }',
    ...sets,
    ...endpointChains,
    ...serviceChains,
    ...map('service-ips', 'ipv4_addr . inet_proto . inet_service', 'ClusterIP traffic', serviceIps),
    ...map('service-nodeports', 'inet_proto . inet_service', 'NodePort traffic', nodePorts),
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
    '}',
  ];
  rules += 10;
  // Create-then-delete makes the delete safe on the first sync; all of it is one transaction.
  const script = [`add table ip ${NFT_TABLE}`, `delete table ip ${NFT_TABLE}`, ...table, ''].join('\n');
  return { script, rules };
}
