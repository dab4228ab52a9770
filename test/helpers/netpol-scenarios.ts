// Kubernetes' NetworkPolicy e2e scenarios (test/e2e/network/netpol/network_policy.go),
// written again as data: pods a, b, c in namespaces x, y, z; per scenario the
// policies (and label changes) of each phase and, per probe, the expected truth
// table, set as the upstream test sets it (everything allowed, then exceptions).
// Where upstream runs a subset of the nine pods, the exceptions are extended to
// the others in the spirit of the test (a pod a policy isolates is isolated from all).
import { networkPolicySchema, type NetworkPolicy } from '../../src/policy/schema.js';

export const NAMESPACES = ['x', 'y', 'z'];
export const PODS = NAMESPACES.flatMap((ns) => ['a', 'b', 'c'].map((p) => `${ns}/${p}`));
const NS_NAME = 'kubernetes.io/metadata.name';

type Sel = { ns?: string; pod?: string };
const matches = (s: Sel, pod: string) => {
  const [ns, name] = pod.split('/');
  return (s.ns === undefined || s.ns === ns) && (s.pod === undefined || s.pod === name);
};
const sel = (pod: string): Sel => ({ ns: pod.split('/')[0], pod: pod.split('/')[1] });

/** A truth table over every ordered pair of distinct pods (loopback is left out, as upstream does). */
export class Reach {
  readonly table = new Map<string, boolean>();
  constructor(all = true) {
    for (const a of PODS) for (const b of PODS) if (a !== b) this.table.set(`${a}>${b}`, all);
  }
  peer(from: Sel, to: Sel, allowed: boolean): this {
    for (const a of PODS) for (const b of PODS) if (a !== b && matches(from, a) && matches(to, b)) this.table.set(`${a}>${b}`, allowed);
    return this;
  }
  expect(from: string, to: string, allowed: boolean): this {
    return this.peer(sel(from), sel(to), allowed);
  }
  allIngress(to: string, allowed: boolean): this {
    return this.peer({}, sel(to), allowed);
  }
  allEgress(from: string, allowed: boolean): this {
    return this.peer(sel(from), {}, allowed);
  }
}

export type Protocol = 'TCP' | 'UDP';
export interface Probe {
  port: number;
  protocol: Protocol;
  expect: Reach;
}
export interface Phase {
  /** The policies in force from this phase on (replacing the previous phase's); absent: unchanged. */
  policies?: NetworkPolicy[];
  /** Label changes made in this phase (a pod's full label set, a namespace's extra labels). */
  podLabels?: Record<string, Record<string, string>>;
  namespaceLabels?: Record<string, Record<string, string>>;
  probes: Probe[];
}
export interface Scenario {
  name: string;
  /** Why cnilab cannot express it; such a scenario is listed, never run. */
  unsupported?: string;
  /** Why one engine does not run it (its semantics differ, named), by network plugin. */
  unsupportedOn?: Record<string, string>;
  phases?: (ip: (pod: string) => string) => Phase[];
}

export function np(ns: string, name: string, spec: Record<string, unknown>): NetworkPolicy {
  return networkPolicySchema.parse({ metadata: { name, namespace: ns }, spec });
}
const ml = (labels: Record<string, string>) => ({ matchLabels: labels });
const podA = ml({ pod: 'a' });
const tcp = (port: number, expect: Reach): Probe => ({ port, protocol: 'TCP', expect });
const udp = (port: number, expect: Reach): Probe => ({ port, protocol: 'UDP', expect });
const denyIngressX = np('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
const one = (policies: NetworkPolicy[], ...probes: Probe[]) => () => [{ policies, probes }];

export const SCENARIOS: Scenario[] = [
  { name: "should support a 'default-deny-ingress' policy", phases: one([denyIngressX], tcp(80, new Reach().peer({}, { ns: 'x' }, false))) },
  {
    name: "should support a 'default-deny-all' policy",
    phases: one([np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], tcp(80, new Reach().peer({}, { ns: 'x' }, false).peer({ ns: 'x' }, {}, false))),
  },
  {
    name: 'should enforce policy to allow traffic from pods within server namespace based on PodSelector',
    phases: one([np('x', 'x-a-allows-x-b', { podSelector: podA, ingress: [{ from: [{ podSelector: ml({ pod: 'b' }) }] }] })], tcp(80, new Reach().allIngress('x/a', false).expect('x/b', 'x/a', true))),
  },
  {
    name: 'should enforce policy to allow ingress traffic for a target',
    phases: one(
      [np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] }), np('x', 'allow-all-to-a', { podSelector: podA, ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }] })],
      tcp(80, new Reach().peer({}, { ns: 'x' }, false).allIngress('x/a', true)),
    ),
  },
  { name: 'should enforce policy to allow ingress traffic from pods in all namespaces', phases: one([np('x', 'allow-from-another-ns', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: {} }] }] })], tcp(80, new Reach())) },
  {
    name: 'should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector',
    phases: one([np('x', 'allow-client-a-via-ns-selector', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }) }] }] })], tcp(80, new Reach().peer({ ns: 'x' }, sel('x/a'), false).peer({ ns: 'z' }, sel('x/a'), false))),
  },
  {
    name: 'should enforce policy based on PodSelector with MatchExpressions',
    phases: one([np('x', 'x-a-allows-x-b', { podSelector: podA, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b'] }] } }] }] })], tcp(80, new Reach().allIngress('x/a', false).expect('x/b', 'x/a', true))),
  },
  {
    name: 'should enforce policy based on NamespaceSelector with MatchExpressions',
    phases: one(
      [np('x', 'allow-ns-y-match-selector', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: NS_NAME, operator: 'In', values: ['y'] }] } }] }] })],
      tcp(80, new Reach().peer({ ns: 'x' }, sel('x/a'), false).peer({ ns: 'z' }, sel('x/a'), false)),
    ),
  },
  {
    name: 'should enforce policy based on PodSelector or NamespaceSelector',
    phases: one(
      [np('x', 'allow-ns-y-match-selector', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: NS_NAME, operator: 'NotIn', values: ['x'] }] } }, { podSelector: ml({ pod: 'b' }) }] }] })],
      tcp(80, new Reach().expect('x/c', 'x/a', false)),
    ),
  },
  {
    name: 'should enforce policy based on PodSelector and NamespaceSelector',
    phases: one(
      [np('x', 'allow-ns-y-podselector-and-nsselector', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: NS_NAME, operator: 'NotIn', values: ['x'] }] }, podSelector: ml({ pod: 'b' }) }] }] })],
      tcp(80, new Reach().allIngress('x/a', false).expect('y/b', 'x/a', true).expect('z/b', 'x/a', true)),
    ),
  },
  {
    name: 'should enforce policy based on Multiple PodSelectors and NamespaceSelectors',
    phases: one(
      [
        np('x', 'allow-ns-y-z-pod-b-c', {
          podSelector: podA,
          ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: NS_NAME, operator: 'NotIn', values: ['x'] }] }, podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] } }] }],
        }),
      ],
      tcp(80, new Reach().allIngress('x/a', false).peer({ ns: 'y', pod: 'b' }, sel('x/a'), true).peer({ ns: 'y', pod: 'c' }, sel('x/a'), true).peer({ ns: 'z', pod: 'b' }, sel('x/a'), true).peer({ ns: 'z', pod: 'c' }, sel('x/a'), true)),
    ),
  },
  {
    name: 'should enforce policy based on any PodSelectors',
    phases: one([np('x', 'allow-ns-x-pod-b-c', { podSelector: podA, ingress: [{ from: [{ podSelector: ml({ pod: 'b' }) }, { podSelector: ml({ pod: 'c' }) }] }] })], tcp(80, new Reach().allIngress('x/a', false).expect('x/b', 'x/a', true).expect('x/c', 'x/a', true))),
  },
  {
    name: 'should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector',
    phases: one([np('x', 'allow-ns-y-pod-a', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }), podSelector: podA }] }] })], tcp(80, new Reach().allIngress('x/a', false).expect('y/a', 'x/a', true))),
  },
  {
    name: 'should enforce policy based on Ports',
    phases: one(
      [np('x', 'allow-81-from-y', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }) }], ports: [{ port: 81, protocol: 'TCP' }] }] })],
      tcp(81, new Reach().peer({ ns: 'x' }, sel('x/a'), false).peer({ ns: 'z' }, sel('x/a'), false)),
    ),
  },
  {
    name: 'should enforce multiple, stacked policies with overlapping podSelectors',
    phases: () => {
      const from = [{ namespaceSelector: ml({ [NS_NAME]: 'y' }) }];
      const p81 = np('x', 'allow-81', { podSelector: podA, ingress: [{ from, ports: [{ port: 81 }] }] });
      const p80 = np('x', 'allow-80', { podSelector: podA, ingress: [{ from, ports: [{ port: 80 }] }] });
      const allow = () => new Reach().peer({ ns: 'x' }, sel('x/a'), false).peer({ ns: 'z' }, sel('x/a'), false);
      return [
        { policies: [p81], probes: [tcp(81, allow()), tcp(80, new Reach().allIngress('x/a', false))] },
        { policies: [p81, p80], probes: [tcp(80, allow())] },
      ];
    },
  },
  { name: 'should support allow-all policy', phases: one([np('x', 'allow-all', { podSelector: {}, ingress: [{}] })], tcp(80, new Reach()), tcp(81, new Reach())) },
  { name: 'should allow ingress access on one named port', unsupported: 'named ports: cnilab pods declare no container ports to name (the lab file rejects a named port)' },
  { name: 'should allow ingress access from namespace on one named port', unsupported: 'named ports (as above)' },
  { name: 'should allow egress access on one named port', unsupported: 'named ports (as above)' },
  {
    name: 'should enforce updated policy',
    phases: () => [
      { policies: [np('x', 'allow-all-mutate-to-deny-all', { podSelector: {}, ingress: [{}] })], probes: [tcp(81, new Reach())] },
      { policies: [np('x', 'allow-all-mutate-to-deny-all', { podSelector: {}, policyTypes: ['Ingress'] })], probes: [tcp(81, new Reach().peer({}, { ns: 'x' }, false))] },
    ],
  },
  {
    name: 'should allow ingress access from updated namespace',
    phases: () => {
      const p = np('x', 'allow-client-a-via-ns-selector', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ ns2: 'updated' }) }] }] });
      return [
        { policies: [p], probes: [tcp(80, new Reach().allIngress('x/a', false))] },
        { namespaceLabels: { y: { ns2: 'updated' } }, probes: [tcp(80, new Reach().allIngress('x/a', false).peer({ ns: 'y' }, {}, true))] },
      ];
    },
  },
  {
    name: 'should allow ingress access from updated pod',
    phases: () => {
      const p = np('x', 'allow-client-a-via-pod-selector', { podSelector: podA, ingress: [{ from: [{ podSelector: ml({ pod: 'b', pod2: 'updated' }) }] }] });
      return [
        { policies: [p], probes: [tcp(80, new Reach().allIngress('x/a', false))] },
        { podLabels: { 'x/b': { pod: 'b', pod2: 'updated' } }, probes: [tcp(80, new Reach().allIngress('x/a', false).expect('x/b', 'x/a', true))] },
      ];
    },
  },
  {
    name: 'should deny ingress from pods on other namespaces',
    phases: one([np('x', 'deny-empty-policy', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })], tcp(80, new Reach().peer({ ns: 'y' }, { ns: 'x' }, false).peer({ ns: 'z' }, { ns: 'x' }, false))),
  },
  {
    name: 'should deny ingress access to updated pod',
    phases: () => {
      const p = np('x', 'deny-ingress-via-label-selector', { podSelector: ml({ target: 'isolated' }), policyTypes: ['Ingress'] });
      return [
        { policies: [p], probes: [tcp(80, new Reach())] },
        { podLabels: { 'x/a': { pod: 'a', target: 'isolated' } }, probes: [tcp(80, new Reach().allIngress('x/a', false))] },
      ];
    },
  },
  { name: 'should deny egress from pods based on PodSelector', phases: one([np('x', 'deny-egress-pod-a', { podSelector: podA, policyTypes: ['Egress'] })], tcp(80, new Reach().allEgress('x/a', false))) },
  { name: 'should deny egress from all pods in a namespace', phases: one([np('x', 'deny-egress-ns-x', { podSelector: {}, policyTypes: ['Egress'] })], tcp(80, new Reach().peer({ ns: 'x' }, {}, false))) },
  {
    name: 'should work with Ingress, Egress specified together',
    phases: one(
      [np('x', 'allow-client-a-via-pod-selector', { podSelector: podA, policyTypes: ['Egress', 'Ingress'], ingress: [{ from: [{ podSelector: ml({ pod: 'b' }) }] }], egress: [{ ports: [{ port: 80 }] }] })],
      tcp(80, new Reach().allIngress('x/a', false).expect('x/b', 'x/a', true)),
      tcp(81, new Reach().allIngress('x/a', false).allEgress('x/a', false).expect('x/b', 'x/a', true)),
    ),
  },
  {
    name: 'should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)',
    phases: () => {
      const fromXa = [{ namespaceSelector: ml({ [NS_NAME]: 'x' }), podSelector: podA }];
      return [
        {
          policies: [
            np('x', 'allow-to-ns-y-pod-a', { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }), podSelector: podA }] }] }),
            np('y', 'allow-from-xa-on-ya', { podSelector: podA, ingress: [{ from: fromXa }] }),
            np('y', 'allow-from-xa-on-yb', { podSelector: ml({ pod: 'b' }), ingress: [{ from: fromXa }] }),
          ],
          probes: [tcp(80, new Reach().allEgress('x/a', false).allIngress('y/a', false).expect('x/a', 'y/a', true).allIngress('y/b', false))],
        },
      ];
    },
  },
  {
    name: 'should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector',
    phases: one([np('x', 'allow-to-ns-y-pod-a', { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }), podSelector: podA }] }] })], tcp(80, new Reach().allEgress('x/a', false).expect('x/a', 'y/a', true))),
  },
  {
    name: 'should enforce ingress policy allowing any port traffic to a server on a specific protocol',
    phases: one([np('x', 'allow-ingress-by-proto', { podSelector: podA, ingress: [{ ports: [{ protocol: 'TCP' }] }] })], tcp(80, new Reach()), udp(80, new Reach().allIngress('x/a', false))),
  },
  {
    name: 'should enforce multiple ingress policies with ingress allow-all policy taking precedence',
    phases: () => {
      const only80 = np('x', 'allow-ingress-port-80', { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] });
      return [
        { policies: [only80], probes: [tcp(81, new Reach().peer({}, { ns: 'x' }, false))] },
        { policies: [only80, np('x', 'allow-ingress', { podSelector: {}, ingress: [{}] })], probes: [tcp(81, new Reach())] },
      ];
    },
  },
  {
    name: 'should enforce multiple egress policies with egress allow-all policy taking precedence',
    phases: () => {
      const only80 = np('x', 'allow-egress-port-80', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 80 }] }] });
      return [
        { policies: [only80], probes: [tcp(81, new Reach().peer({ ns: 'x' }, {}, false))] },
        { policies: [only80, np('x', 'allow-egress', { podSelector: {}, policyTypes: ['Egress'], egress: [{}] })], probes: [tcp(81, new Reach())] },
      ];
    },
  },
  {
    name: 'should stop enforcing policies after they are deleted',
    phases: () => [
      { policies: [np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })], probes: [tcp(80, new Reach().peer({ ns: 'x' }, {}, false).peer({}, { ns: 'x' }, false))] },
      { policies: [], probes: [tcp(80, new Reach())] },
    ],
  },
  {
    name: 'should allow egress access to server in CIDR block',
    unsupportedOn: { cilium: 'ipBlock selecting pod addresses: as in Cilium, CIDR rules match addresses outside the cluster, and a pod address resolves to its label identity' },
    phases: (ip) => [
      { policies: [np('x', 'allow-client-a-via-cidr-egress-rule', { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: `${ip('y/b')}/32` } }] }] })], probes: [tcp(80, new Reach().allEgress('x/a', false).expect('x/a', 'y/b', true))] },
    ],
  },
  {
    name: 'should enforce except clause while egress access to server in CIDR block',
    unsupportedOn: { cilium: 'ipBlock selecting pod addresses: as in Cilium, CIDR rules match addresses outside the cluster, and a pod address resolves to its label identity' },
    phases: (ip) => [
      {
        policies: [np('x', 'allow-client-a-via-cidr-egress-rule', { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: largeCidr(ip('x/b')), except: [`${ip('x/b')}/32`] } }] }] })],
        probes: [tcp(80, new Reach().expect('x/a', 'x/b', false))],
      },
    ],
  },
  {
    name: 'should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed',
    unsupportedOn: { cilium: 'ipBlock selecting pod addresses: as in Cilium, CIDR rules match addresses outside the cluster, and a pod address resolves to its label identity' },
    phases: (ip) => {
      const name = 'allow-client-a-via-cidr-egress-rule';
      return [
        { policies: [np('x', name, { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: largeCidr(ip('x/b')), except: [`${ip('x/b')}/32`] } }] }] })], probes: [tcp(80, new Reach().expect('x/a', 'x/b', false))] },
        { policies: [np('x', name, { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: `${ip('x/b')}/32` } }] }] })], probes: [tcp(80, new Reach().allEgress('x/a', false).expect('x/a', 'x/b', true))] },
      ];
    },
  },
  {
    name: 'should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector',
    phases: () => {
      const egress = np('x', 'allow-egress-for-target', { podSelector: podA, policyTypes: ['Egress'], egress: [{}] });
      return [
        { policies: [egress], probes: [tcp(80, new Reach())] },
        { policies: [egress, np('x', 'deny-ingress-via-label-selector', { podSelector: podA, policyTypes: ['Ingress'] })], probes: [tcp(80, new Reach().allIngress('x/a', false))] },
      ];
    },
  },
  {
    name: "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
    phases: one([denyIngressX, np('x', 'allow-only-sctp-ingress-on-port-81', { podSelector: podA, ingress: [{ ports: [{ port: 81, protocol: 'SCTP' }] }] })], tcp(81, new Reach().peer({}, { ns: 'x' }, false))),
  },
  {
    name: "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
    phases: one([np('x', 'allow-only-sctp-ingress-on-port-80', { podSelector: podA, ingress: [{ ports: [{ port: 80, protocol: 'SCTP' }] }] })], tcp(81, new Reach().allIngress('x/a', false))),
  },
  {
    name: 'should not allow access by TCP when a policy specifies only UDP',
    phases: one([np('x', 'allow-only-udp-ingress-on-port-81', { podSelector: podA, ingress: [{ ports: [{ port: 81, protocol: 'UDP' }] }] })], tcp(81, new Reach().allIngress('x/a', false))),
  },
  {
    name: 'should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label',
    phases: one([np('x', 'allow-client-a-via-ns-selector-for-immutable-ns-label', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }) }] }] })], tcp(80, new Reach().peer({ ns: 'x' }, sel('x/a'), false).peer({ ns: 'z' }, sel('x/a'), false))),
  },
  {
    name: 'should enforce policy based on NamespaceSelector with MatchExpressions using default ns label',
    phases: one(
      [np('x', 'allow-ns-y-match-selector-for-immutable-ns-label', { podSelector: podA, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: NS_NAME, operator: 'NotIn', values: ['y'] }] } }] }] })],
      tcp(80, new Reach().peer(sel('x/a'), { ns: 'y' }, false)),
    ),
  },
  { name: 'UDP: should support a \'default-deny-ingress\' policy', phases: one([np('x', 'deny-all', { podSelector: {}, policyTypes: ['Ingress'] })], udp(80, new Reach().peer({}, { ns: 'x' }, false))) },
  {
    name: 'UDP: should enforce policy based on Ports',
    phases: one(
      [np('x', 'allow-ingress-on-port-81-ns-x', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }) }], ports: [{ port: 81, protocol: 'UDP' }] }] })],
      udp(81, new Reach().peer({ ns: 'x' }, sel('x/a'), false).peer({ ns: 'z' }, sel('x/a'), false)),
    ),
  },
  {
    name: 'UDP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector',
    phases: one([np('x', 'allow-ns-y-pod-a', { podSelector: podA, ingress: [{ from: [{ namespaceSelector: ml({ [NS_NAME]: 'y' }), podSelector: podA }] }] })], udp(80, new Reach().allIngress('x/a', false).expect('y/a', 'x/a', true))),
  },
  { name: "SCTP: should support a 'default-deny-ingress' policy", unsupported: 'SCTP connectivity: the pods have no SCTP server (nginx and node speak no SCTP here)' },
  { name: 'SCTP: should enforce policy based on Ports', unsupported: 'SCTP connectivity (as above)' },
  { name: 'SCTP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector', unsupported: 'SCTP connectivity (as above)' },
];

/** Upstream's makeLargeCIDRForIP: the /24 around an IPv4 address. */
function largeCidr(ip: string): string {
  return `${ip.split('.').slice(0, 3).join('.')}.0/24`;
}
