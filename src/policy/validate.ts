// Policy mistakes a schema cannot see, each with the path of the field at fault
// (the lab-file loader turns the path into file:line).
import { contains, parseCidr } from '../net/ipnet.js';
import { policyId, selectedPods, type Cluster } from './model.js';
import type { NetworkPolicy, PolicyPeer } from './schema.js';

export interface Problem {
  path: (string | number)[];
  message: string;
}

function cidrProblems(peer: PolicyPeer, at: (string | number)[]): Problem[] {
  if (!peer.ipBlock) return [];
  const cidr = parseCidr(peer.ipBlock.cidr);
  if (!cidr) return [{ path: [...at, 'ipBlock', 'cidr'], message: `"${peer.ipBlock.cidr}" is not an IPv4 CIDR like 10.0.0.0/24` }];
  const problems: Problem[] = [];
  (peer.ipBlock.except ?? []).forEach((e, k) => {
    const path = [...at, 'ipBlock', 'except', k];
    const ex = parseCidr(e);
    if (!ex) problems.push({ path, message: `"${e}" is not an IPv4 CIDR like 10.0.0.0/28` });
    // Kubernetes requires every except to lie strictly inside the block.
    else if (ex.prefix <= cidr.prefix || !contains(cidr, ex.ip)) {
      problems.push({ path, message: `${e} is not strictly inside ${peer.ipBlock!.cidr}` });
    }
  });
  return problems;
}

/**
 * Problems of `policies` (found at `root` in the file) against the lab's pods.
 * A policy that selects no pod is an error, not a warning: a lab's pods are all
 * in the file, so such a policy can never take effect, and a typo in a label
 * would otherwise pass silently (a "deny" that denies nothing).
 */
export function policyProblems(policies: NetworkPolicy[], cluster: Omit<Cluster, 'pods'> & { pods: Omit<Cluster['pods'][number], 'ip'>[] }, root: (string | number)[] = ['policies']): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const withIps: Cluster = { namespaces: cluster.namespaces, pods: cluster.pods.map((p) => ({ ...p, ip: '' })) };
  policies.forEach((p, i) => {
    const at = (...rest: (string | number)[]) => [...root, i, ...rest];
    const id = policyId(p);
    if (seen.has(id)) problems.push({ path: at('metadata', 'name'), message: `policy ${id} is defined twice` });
    seen.add(id);
    if (!selectedPods(withIps, p).length) {
      const inNs = cluster.pods.filter((pod) => pod.namespace === p.metadata.namespace).map((pod) => pod.name);
      problems.push({
        path: at('spec', 'podSelector'),
        message: `selects no pod in namespace "${p.metadata.namespace}" (pods there: ${inNs.join(', ') || 'none'}), so it could never take effect`,
      });
    }
    const rules = [...(p.spec.ingress ?? []).map((r, j) => ({ dir: 'ingress', j, peers: r.from, peersKey: 'from', ports: r.ports })), ...(p.spec.egress ?? []).map((r, j) => ({ dir: 'egress', j, peers: r.to, peersKey: 'to', ports: r.ports }))];
    for (const r of rules) {
      (r.peers ?? []).forEach((peer, k) => problems.push(...cidrProblems(peer, at('spec', r.dir, r.j, r.peersKey, k))));
      (r.ports ?? []).forEach((port, k) => {
        if (typeof port.port === 'string') {
          problems.push({ path: at('spec', r.dir, r.j, 'ports', k, 'port'), message: `named port "${port.port}" is not supported (pods here declare no container ports): give the number` });
        }
      });
    }
    for (const dir of ['ingress', 'egress'] as const) {
      const key = dir === 'ingress' ? 'Ingress' : 'Egress';
      if (p.spec[dir]?.length && p.spec.policyTypes && !p.spec.policyTypes.includes(key)) {
        problems.push({ path: at('spec', 'policyTypes'), message: `has ${dir} rules but policyTypes leaves out ${key}, so they would be ignored` });
      }
    }
  });
  return problems;
}
