// The upstream NetworkPolicy scenarios against the pure model: the truth tables
// written from Kubernetes' e2e tests must come out of endpointPolicies/verdict.
import { expect } from 'chai';
import { endpointPolicies, verdict, type Cluster } from '../../src/policy/model.js';
import { NAMESPACES, PODS, SCENARIOS, type Phase } from '../helpers/netpol-scenarios.js';
import type { NetworkPolicy } from '../../src/policy/schema.js';

const ipOf = (pod: string) => `10.244.0.${PODS.indexOf(pod) + 2}`;

/** Every pair whose verdict differs from the table, as "from>to expected/got". */
export function mismatches(phase: Phase, cluster: Cluster, policies: NetworkPolicy[]): string[] {
  const eps = endpointPolicies(cluster, policies);
  const out: string[] = [];
  for (const probe of phase.probes) {
    for (const [pair, want] of probe.expect.table) {
      const [a, b] = pair.split('>');
      const got = verdict(eps, ipOf(a), ipOf(b), probe.protocol, probe.port).allowed;
      if (got !== want) out.push(`${probe.protocol}/${probe.port} ${pair} expected ${want}, model says ${got}`);
    }
  }
  return out;
}

describe('policy model against the upstream NetworkPolicy scenarios', () => {
  for (const s of SCENARIOS) {
    const phases = s.phases;
    if (!phases) continue;
    it(s.name, () => {
      const cluster: Cluster = {
        namespaces: NAMESPACES.map((ns) => ({ name: ns, labels: { ns } })),
        pods: PODS.map((p) => ({ name: p, namespace: p.split('/')[0], labels: { pod: p.split('/')[1] }, ip: ipOf(p) })),
      };
      let policies: NetworkPolicy[] = [];
      for (const phase of phases(ipOf)) {
        policies = phase.policies ?? policies;
        for (const [pod, labels] of Object.entries(phase.podLabels ?? {})) cluster.pods.find((p) => p.name === pod)!.labels = labels;
        for (const [ns, labels] of Object.entries(phase.namespaceLabels ?? {})) Object.assign(cluster.namespaces.find((n) => n.name === ns)!.labels, labels);
        expect(mismatches(phase, cluster, policies)).to.deep.equal([]);
      }
    });
  }
});
