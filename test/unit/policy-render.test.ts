import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { endpointPolicies, type Cluster } from '../../src/policy/model.js';
import { networkPolicySchema } from '../../src/policy/schema.js';
import { DROP_COMMENT, endpointChain, ipsetMembers, ipsetName, policyChain, portGroups, renderNode } from '../../src/policy/felix.js';
import { initialPolicies } from '../../src/lab/lab-file.js';
import { parseLab } from '../../src/datapaths/index.js';
import { labErrorMessage } from '../helpers/errors.js';

const cluster: Cluster = {
  namespaces: [],
  pods: [
    { name: 'web-0', namespace: 'default', labels: { app: 'web' }, ip: '10.244.0.2' },
    { name: 'client-0', namespace: 'default', labels: { app: 'client' }, ip: '10.244.0.3' },
    { name: 'other-0', namespace: 'default', labels: { app: 'other' }, ip: '10.244.0.66' },
  ],
};
const allowClient = networkPolicySchema.parse({
  metadata: { name: 'allow-client' },
  spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 80 }, { protocol: 'UDP', port: 53 }] }] },
});

describe('felix rendering', () => {
  const eps = endpointPolicies(cluster, [allowClient]);
  const local = [
    { policy: eps[0], iface: 'caliaaaaaaaaaaa' },
    { policy: eps[1], iface: 'calibbbbbbbbbbb' },
  ];
  const r = renderNode(local);

  it('dispatches each cali interface to its endpoint chains, by goto', () => {
    expect(r.chains.get('cali-to-wl-dispatch')).to.deep.equal([
      '-A cali-to-wl-dispatch -o caliaaaaaaaaaaa -g cali-tw-caliaaaaaaaaaaa',
      '-A cali-to-wl-dispatch -o calibbbbbbbbbbb -g cali-tw-calibbbbbbbbbbb',
    ]);
    expect(r.chains.get('cali-from-wl-dispatch')).to.have.length(2);
  });

  it('an isolated endpoint: established first, its policy, then the counted drop naming the policy', () => {
    const tw = r.chains.get(endpointChain('caliaaaaaaaaaaa', 'ingress'))!;
    expect(tw[0]).to.match(/--ctstate RELATED,ESTABLISHED -j ACCEPT$/);
    expect(tw.some((l) => l.endsWith(`-j ${policyChain('default/allow-client', 'ingress')}`))).to.equal(true);
    expect(tw.at(-1)).to.equal(`-A cali-tw-caliaaaaaaaaaaa -m comment --comment "${DROP_COMMENT} (default/allow-client)" -j DROP`);
  });

  it('an endpoint no policy selects gets the accept mark and no drop', () => {
    const tw = r.chains.get(endpointChain('calibbbbbbbbbbb', 'ingress'))!;
    expect(tw.some((l) => l.includes('-j DROP') && !l.includes('INVALID'))).to.equal(false);
    expect(tw.join('\n')).to.match(/no policy selects default\/client-0 for ingress: allow.*-j MARK --set-xmark 0x10000\/0x10000/);
  });

  it('the policy chain matches the selector ipset and one port group per protocol', () => {
    const chain = policyChain('default/allow-client', 'ingress');
    const set = r.ipsets[0];
    expect(set).to.deep.include({ describes: "projectcalico.org/namespace == 'default' && app == 'client'", members: ['10.244.0.3'] });
    expect(set.name).to.match(/^cali40s:[A-Za-z0-9_-]{22}$/);
    expect(r.chains.get(chain)!.filter((l) => l.includes('MARK'))).to.deep.equal([
      `-A ${chain} -p tcp -m multiport --dports 80 -m set --match-set ${set.name} src -m comment --comment "default/allow-client: allow projectcalico.org/namespace == 'default' && app == 'client'" -j MARK --set-xmark 0x10000/0x10000`,
      `-A ${chain} -p udp -m multiport --dports 53 -m set --match-set ${set.name} src -m comment --comment "default/allow-client: allow projectcalico.org/namespace == 'default' && app == 'client'" -j MARK --set-xmark 0x10000/0x10000`,
    ]);
  });

  it('ipBlocks: except as nomatch entries, /0 as two halves', () => {
    expect(ipsetMembers({ kind: 'cidr', cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] })).to.deep.equal(['10.0.0.0/16', '10.0.2.0/24 nomatch']);
    expect(ipsetMembers({ kind: 'cidr', cidr: '0.0.0.0/0', except: [] })).to.deep.equal(['0.0.0.0/1', '128.0.0.0/1']);
    expect(ipsetName({ kind: 'cidr', cidr: '0.0.0.0/0', except: [] })).to.match(/^cali40n:/);
  });

  it('port groups: ranges, protocol-only entries, chunks multiport can take', () => {
    expect(portGroups([])).to.deep.equal([[]]);
    expect(portGroups([{ protocol: 'TCP', port: 80, endPort: 90 }, { protocol: 'TCP', port: 443 }])).to.deep.equal([['-p', 'tcp', '-m', 'multiport', '--dports', '80:90,443']]);
    expect(portGroups([{ protocol: 'UDP' }, { protocol: 'UDP', port: 53 }])).to.deep.equal([['-p', 'udp']]);
    expect(portGroups(Array.from({ length: 9 }, (_, i) => ({ protocol: 'TCP' as const, port: 1000 + i })))).to.have.length(2);
  });

  it('chain names fit iptables (28 characters) and ipset names fit ipset (31)', () => {
    for (const name of r.chains.keys()) expect(name.length, name).to.be.at.most(28);
    for (const s of r.ipsets) expect(s.name.length).to.be.at.most(31);
  });
});

// The calico-bgp lab with labels and policies added, as a lab author writes them.
const base = readFileSync('labs/calico-bgp.yaml', 'utf8').replace(
  /workloads:\n  - name: nginx\n    image: nginx\n    replicas: 3\n/,
  `workloads:
  - name: nginx
    image: nginx
    replicas: 3
  - name: client
    image: nginx
    replicas: 1
    namespace: team
    labels: { app: client, role: frontend }

namespaces:
  - name: team
    labels: { env: test }

policies:
  - metadata: { name: deny-nginx }
    spec:
      podSelector: { matchLabels: { app: nginx } }
  - metadata: { name: allow-client }
    spec:
      podSelector: { matchLabels: { app: nginx } }
      ingress:
        - from:
            - namespaceSelector: { matchLabels: { env: test } }
              podSelector: { matchExpressions: [{ key: role, operator: In, values: [frontend] }] }
          ports:
            - port: 80
              endPort: 81
        - from:
            - ipBlock: { cidr: 192.168.10.0/24, except: [192.168.10.128/25] }
`,
);

describe('lab files with policies', () => {
  it('parses labels, namespaces and policies; every policy is in force from the start without a policy step', () => {
    const lab = parseLab(base, 'good.yaml');
    expect(lab.workloads[1]).to.deep.include({ namespace: 'team', labels: { app: 'client', role: 'frontend' } });
    expect(lab.workloads[0].namespace).to.equal('default');
    expect(initialPolicies(lab).map((p) => p.metadata.name)).to.deep.equal(['deny-nginx', 'allow-client']);
  });

  it('a policy a step applies is not in force at the start', () => {
    const lab = parseLab(base.replace('steps:\n', 'steps:\n  - name: allow the client\n    policy: { apply: [allow-client] }\n'), 'good.yaml');
    expect(initialPolicies(lab).map((p) => p.metadata.name)).to.deep.equal(['deny-nginx']);
  });

  const line = (needle: string) => base.slice(0, base.indexOf(needle)).split('\n').length;
  const cases: [string, string, RegExp][] = [
    ['endPort below port', base.replace('endPort: 81', 'endPort: 79'), new RegExp(`bad\\.yaml:${line('endPort: 81')}: policies\\[1\\]\\.spec\\.ingress\\[0\\]\\.ports\\[0\\]\\.endPort: endPort 79 is below port 80`)],
    ['a bad CIDR', base.replace('cidr: 192.168.10.0/24', 'cidr: 192.168.10.0/33'), new RegExp(`bad\\.yaml:${line('cidr: 192.168')}: policies\\[1\\]\\.spec\\.ingress\\[1\\]\\.from\\[0\\]\\.ipBlock\\.cidr: "192\\.168\\.10\\.0/33" is not an IPv4 CIDR`)],
    ['an except outside the block', base.replace('except: [192.168.10.128/25]', 'except: [10.0.0.0/8]'), /policies\[1\]\.spec\.ingress\[1\]\.from\[0\]\.ipBlock\.except\[0\]: 10\.0\.0\.0\/8 is not strictly inside 192\.168\.10\.0\/24/],
    ['an unknown selector operator', base.replace('operator: In', 'operator: Inside'), /policies\[1\]\.spec\.ingress\[0\]\.from\[0\]\.podSelector\.matchExpressions\[0\]\.operator: /],
    ['In without values', base.replace('operator: In, values: [frontend]', 'operator: In'), /matchExpressions\[0\]\.values: operator In needs at least one value/],
    ['Exists with values', base.replace('operator: In', 'operator: Exists'), /matchExpressions\[0\]\.values: operator Exists takes no values/],
    ['a bad label value', base.replace('role: frontend }', 'role: "front end" }'), /workloads\[1\]\.labels\.role: not a label value/],
    ['a bad label key in a selector', base.replace('{ app: nginx } }\n  - metadata', '{ "-app": nginx } }\n  - metadata'), /policies\[0\]\.spec\.podSelector\.matchLabels\.-app: "-app" is not a label key/],
    ['a policy that selects no pod', base.replace('{ app: nginx } }\n  - metadata', '{ app: ngnix } }\n  - metadata'), new RegExp(`bad\\.yaml:${line('podSelector: { matchLabels: { app: nginx } }')}: policies\\[0\\]\\.spec\\.podSelector: selects no pod in namespace "default" \\(pods there: nginx-0, nginx-1, nginx-2\\), so it could never take effect`)],
    ['a peer with ipBlock and a selector', base.replace('- ipBlock: {', '- podSelector: {}\n              ipBlock: {'), /from\[0\]\.ipBlock: a peer is either an ipBlock or pod\/namespace selectors, not both/],
    ['an empty peer', base.replace('- ipBlock: { cidr: 192.168.10.0/24, except: [192.168.10.128/25] }', '- {}'), /from\[0\]: a peer needs podSelector, namespaceSelector or ipBlock/],
    ['a named port', base.replace('- port: 80\n', '- port: http\n'), /ports\[0\]\.endPort: endPort needs a numeric port|ports\[0\]\.port: named port "http" is not supported/],
    ['a policy step naming no policy', base.replace('steps:\n', 'steps:\n  - name: x\n    policy: { apply: [alow-client] }\n'), /steps\[0\]\.policy\.apply\[0\]: no policy named "alow-client"/],
    ['the same policy twice', base.replace('name: allow-client', 'name: deny-nginx'), /policies\[1\]\.metadata\.name: policy default\/deny-nginx is defined twice/],
    ['policies on a plugin with no policy engine', readFileSync('labs/flannel-vxlan.yaml', 'utf8').replace('steps:\n', 'policies:\n  - metadata: { name: deny }\n    spec: { podSelector: {} }\nsteps:\n'), /policies: network plugin "flannel" enforces no NetworkPolicy: policy is the network plugin's job/],
  ];
  for (const [what, text, re] of cases) {
    it(`names file, line and field for ${what}`, () => expect(labErrorMessage(text)).to.match(re));
  }
});
