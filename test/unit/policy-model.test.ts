import { expect } from 'chai';
import { calicoSelector, endpointPolicies, policyTypes, selectorMatches, verdict, type Cluster, type ConnProtocol } from '../../src/policy/model.js';
import { networkPolicySchema, type NetworkPolicy } from '../../src/policy/schema.js';

// Three namespaces, two pods each: x/a x/b x/c style as the upstream netpol tests build them.
const cluster: Cluster = {
  namespaces: [
    { name: 'x', labels: { ns: 'x', team: 'blue' } },
    { name: 'y', labels: { ns: 'y', team: 'blue' } },
    { name: 'z', labels: { ns: 'z', team: 'red' } },
  ],
  pods: ['x', 'y', 'z'].flatMap((ns, i) =>
    ['a', 'b', 'c'].map((pod, j) => ({ name: `${ns}-${pod}`, namespace: ns, labels: { pod, ...(pod === 'a' ? { tier: 'front' } : {}) }, ip: `10.0.${i}.${j + 2}` })),
  ),
};
const ip = (name: string) => cluster.pods.find((p) => p.name === name)!.ip;

function policy(ns: string, name: string, spec: unknown): NetworkPolicy {
  return networkPolicySchema.parse({ metadata: { name, namespace: ns }, spec });
}

function allowed(policies: NetworkPolicy[], from: string, to: string, port = 80, protocol: ConnProtocol = 'TCP'): boolean {
  const eps = endpointPolicies(cluster, policies);
  const f = cluster.pods.some((p) => p.name === from) ? ip(from) : from;
  const t = cluster.pods.some((p) => p.name === to) ? ip(to) : to;
  return verdict(eps, f, t, protocol, protocol === 'ICMP' ? undefined : port).allowed;
}

/** Every pod pair's verdict as a set of "from>to" that are allowed. */
function reach(policies: NetworkPolicy[], port = 80, protocol: ConnProtocol = 'TCP'): Set<string> {
  const out = new Set<string>();
  for (const a of cluster.pods) for (const b of cluster.pods) if (a !== b && allowed(policies, a.name, b.name, port, protocol)) out.add(`${a.name}>${b.name}`);
  return out;
}
const allPairs = cluster.pods.length * (cluster.pods.length - 1);

describe('policy model: selectors', () => {
  const labels = { app: 'web', tier: 'front' };
  const cases: [string, Parameters<typeof selectorMatches>[0], boolean][] = [
    ['empty selector', {}, true],
    ['matchLabels equal', { matchLabels: { app: 'web' } }, true],
    ['matchLabels different value', { matchLabels: { app: 'db' } }, false],
    ['matchLabels missing key', { matchLabels: { env: 'prod' } }, false],
    ['In with the value', { matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] }, true],
    ['In without it', { matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }, false],
    ['NotIn with the value', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, false],
    ['NotIn on a missing key', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, true],
    ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    ['Exists on a missing key', { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, false],
    ['DoesNotExist', { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, true],
    ['matchLabels AND expressions', { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, false],
  ];
  for (const [what, sel, want] of cases) it(`${what} → ${want}`, () => expect(selectorMatches(sel, labels)).to.equal(want));

  it('writes selectors in Calico syntax, sorted, empty as all()', () => {
    expect(calicoSelector({})).to.equal('all()');
    expect(calicoSelector({ matchLabels: { b: '2', a: '1' }, matchExpressions: [{ key: 'c', operator: 'NotIn', values: ['y', 'x'] }, { key: 'd', operator: 'DoesNotExist' }] })).to.equal(
      "a == '1' && b == '2' && c not in {'x', 'y'} && !has(d)",
    );
    expect(calicoSelector({ matchLabels: { ns: 'x' } }, 'pcns.')).to.equal("pcns.ns == 'x'");
  });
});

describe('policy model: policyTypes', () => {
  it('defaults to Ingress, plus Egress when there are egress rules', () => {
    expect(policyTypes(policy('x', 'p', { podSelector: {} }))).to.deep.equal(['ingress']);
    expect(policyTypes(policy('x', 'p', { podSelector: {}, egress: [{}] }))).to.deep.equal(['ingress', 'egress']);
    expect(policyTypes(policy('x', 'p', { podSelector: {}, policyTypes: ['Egress'] }))).to.deep.equal(['egress']);
  });
});

describe('policy model: verdicts', () => {
  it('no policy: every pod reaches every pod', () => {
    expect(reach([]).size).to.equal(allPairs);
  });

  it('default-deny ingress in x isolates x only, for ingress only', () => {
    const r = reach([policy('x', 'deny', { podSelector: {} })]);
    for (const p of cluster.pods) {
      expect(r.has(`y-a>${p.name}`), p.name).to.equal(p.namespace !== 'x' && p.name !== 'y-a');
    }
    expect(r.has('x-a>y-b'), 'egress from x is untouched').to.equal(true);
  });

  it('deny on one pod by label leaves its neighbours open', () => {
    const r = reach([policy('x', 'deny-a', { podSelector: { matchLabels: { pod: 'a' } } })]);
    expect(r.has('x-b>x-a')).to.equal(false);
    expect(r.has('x-a>x-b')).to.equal(true);
    expect(r.has('x-c>x-b')).to.equal(true);
  });

  it('allow from a podSelector opens exactly that pod, in the policy namespace only', () => {
    const p = [policy('x', 'allow-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })];
    const into = [...reach(p)].filter((k) => k.endsWith('>x-a'));
    expect(into).to.deep.equal(['x-b>x-a']);
  });

  it('namespaceSelector alone admits every pod of the matching namespaces', () => {
    const p = [policy('x', 'from-blue', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'blue' } } }] }] })];
    const into = [...reach(p)].filter((k) => k.endsWith('>x-a')).sort();
    expect(into).to.deep.equal(['x-b>x-a', 'x-c>x-a', 'y-a>x-a', 'y-b>x-a', 'y-c>x-a']);
  });

  it('namespaceSelector and podSelector in one peer: both must match (AND)', () => {
    const p = [policy('x', 'and', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] })];
    expect([...reach(p)].filter((k) => k.endsWith('>x-a'))).to.deep.equal(['y-b>x-a']);
  });

  it('two peers in one rule: either may match (OR)', () => {
    const p = [
      policy('x', 'or', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] }),
    ];
    expect([...reach(p)].filter((k) => k.endsWith('>x-a')).sort()).to.deep.equal(['x-b>x-a', 'y-a>x-a', 'y-b>x-a', 'y-c>x-a']);
  });

  it('an empty namespaceSelector admits every namespace', () => {
    const p = [policy('x', 'all-ns', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: {} }] }] })];
    expect([...reach(p)].filter((k) => k.endsWith('>x-a')).length).to.equal(8);
  });

  it('matchExpressions on namespaces (NotIn)', () => {
    const p = [policy('x', 'not-z', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['z'] }] } }] }] })];
    const into = [...reach(p)].filter((k) => k.endsWith('>x-a'));
    expect(into.some((k) => k.startsWith('z-'))).to.equal(false);
    expect(into.length).to.equal(5);
  });

  it('the kubernetes.io/metadata.name label selects a namespace by name', () => {
    const p = [policy('x', 'from-z', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }] }] })];
    expect(allowed(p, 'z-c', 'x-b')).to.equal(true);
    expect(allowed(p, 'y-c', 'x-b')).to.equal(false);
  });

  it('ports: one port opens that port only, of that protocol', () => {
    const p = [policy('x', 'port', { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] })];
    expect(allowed(p, 'y-a', 'x-a', 81)).to.equal(true);
    expect(allowed(p, 'y-a', 'x-a', 80)).to.equal(false);
    expect(allowed(p, 'y-a', 'x-a', 81, 'UDP')).to.equal(false);
    expect(allowed(p, 'y-a', 'x-a', 0, 'ICMP'), 'ICMP: only rules without ports match').to.equal(false);
  });

  it('endPort makes a range, both ends included', () => {
    const p = [policy('x', 'range', { podSelector: {}, ingress: [{ ports: [{ port: 8000, endPort: 8010 }] }] })];
    expect([7999, 8000, 8005, 8010, 8011].map((port) => allowed(p, 'y-a', 'x-a', port))).to.deep.equal([false, true, true, true, false]);
  });

  it('a port entry with only a protocol opens every port of it', () => {
    const p = [policy('x', 'udp', { podSelector: {}, ingress: [{ ports: [{ protocol: 'UDP' }] }] })];
    expect(allowed(p, 'y-a', 'x-a', 53, 'UDP')).to.equal(true);
    expect(allowed(p, 'y-a', 'x-a', 53, 'TCP')).to.equal(false);
  });

  it('peers and ports in one rule: both must match', () => {
    const p = [policy('x', 'both', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 80 }] }] })];
    expect(allowed(p, 'x-b', 'x-a', 80)).to.equal(true);
    expect(allowed(p, 'x-b', 'x-a', 81)).to.equal(false);
    expect(allowed(p, 'x-c', 'x-a', 80)).to.equal(false);
  });

  it('policies add up: a second policy can only open more', () => {
    const deny = policy('x', 'deny', { podSelector: {} });
    const allow = policy('x', 'allow-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] });
    const allow81 = policy('x', 'allow-81', { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] });
    expect(allowed([deny, allow], 'y-a', 'x-a')).to.equal(true);
    expect(allowed([deny, allow], 'z-a', 'x-a')).to.equal(false);
    expect(allowed([deny, allow, allow81], 'z-a', 'x-a', 81)).to.equal(true);
    expect(allowed([allow], 'z-a', 'x-a'), 'an allow policy alone also isolates').to.equal(false);
  });

  it('ingress: [{}] allows everything and still isolates nothing away', () => {
    expect(reach([policy('x', 'allow-all', { podSelector: {}, ingress: [{}] })]).size).to.equal(allPairs);
  });

  it('egress default deny blocks the pod reaching out, not others reaching it', () => {
    const p = [policy('x', 'deny-egress', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] })];
    expect(allowed(p, 'x-a', 'y-a')).to.equal(false);
    expect(allowed(p, 'y-a', 'x-a')).to.equal(true);
  });

  it('egress to an ipBlock, with except', () => {
    const p = [policy('x', 'egress-cidr', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }] }] })];
    expect(allowed(p, 'x-a', 'y-a')).to.equal(true);
    expect(allowed(p, 'x-a', 'z-a'), 'z is in the except').to.equal(false);
    expect(allowed(p, 'x-a', '192.168.10.220')).to.equal(false);
  });

  it('ingress from an ipBlock applies to pod addresses too', () => {
    const p = [policy('x', 'from-cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.1.0/24' } }] }] })];
    expect(allowed(p, 'y-c', 'x-a')).to.equal(true);
    expect(allowed(p, 'z-c', 'x-a')).to.equal(false);
  });

  it('an egress policy and an ingress policy must both allow', () => {
    const p = [
      policy('x', 'egress-y', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
      policy('y', 'ingress-81', { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] }),
    ];
    expect(allowed(p, 'x-a', 'y-a', 81)).to.equal(true);
    expect(allowed(p, 'x-a', 'y-a', 80)).to.equal(false);
    expect(allowed(p, 'x-a', 'z-a', 81)).to.equal(false);
  });

  it('names the policies that allowed or isolated', () => {
    const eps = endpointPolicies(cluster, [policy('x', 'deny', { podSelector: {} }), policy('x', 'allow-b', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })]);
    expect(verdict(eps, ip('x-b'), ip('x-a'), 'TCP', 80).ingress).to.deep.include({ allowed: true, allowedBy: ['x/allow-b'] });
    expect(verdict(eps, ip('x-c'), ip('x-a'), 'TCP', 80).ingress).to.deep.include({ allowed: false, droppedBy: ['x/allow-b', 'x/deny'] });
  });

  it('a pod added later is picked up by the selectors it matches', () => {
    const p = [policy('x', 'allow-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })];
    const grown: Cluster = { ...cluster, pods: [...cluster.pods, { name: 'x-b2', namespace: 'x', labels: { pod: 'b' }, ip: '10.0.0.9' }] };
    const eps = endpointPolicies(grown, p);
    expect(verdict(eps, '10.0.0.9', ip('x-a'), 'TCP', 80).allowed).to.equal(true);
    const rule = eps.find((e) => e.pod.name === 'x-a')!.ingress.rules[0];
    expect(rule.peer).to.deep.equal({ kind: 'pods', selector: "projectcalico.org/namespace == 'x' && pod == 'b'", ips: ['10.0.0.3', '10.0.0.9'] });
  });
});
