import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { loadLab, parseLab } from '../../src/datapaths/index.js';
import { render, jsonPath, checkExpectations } from '../../src/runner/steps.js';
import { schedule } from '../../src/runner/pods.js';
import { labError } from '../helpers/errors.js';

const good = readFileSync('labs/flannel-vxlan.yaml', 'utf8');
const dual = readFileSync('labs/flannel-vxlan-dual.yaml', 'utf8');
const loadLabText = (text: string) => parseLab(text, 'good.yaml');

describe('lab files', () => {
  it('every shipped lab parses', () => {
    for (const name of listLabFiles()) expect(loadLab(name).lab.name).to.equal(name);
  });

  const cases: [string, string, RegExp][] = [
    ['a node address outside the underlay', good.replace('192.168.10.220 }', '192.168.99.220 }'), /bad\.yaml:13: topology\.nodes\[1\]\.address: 192\.168\.99\.220 is outside the underlay/],
    ['a wrong type', good.replace('replicas: 3', 'replicas: three'), /bad\.yaml:\d+: workloads\[0\]\.replicas: /],
    ['an unknown field', good.replace('mode: overlay', 'mode: overlay\nfoo: 1'), /bad\.yaml:\d+: .*foo/],
    ['YAML syntax', good.replace('topology:', 'topology: [oops'), /bad\.yaml:\d+: YAML syntax/],
    ['an unknown network plugin', good.replace('plugin: flannel', 'plugin: weave'), /network\.plugin: "weave" is not a network plugin cnilab has \(flannel/],
    ['a step on a node that does not exist', good.replace('node: master\n    run: ip route', 'node: mastr\n    run: ip route'), /steps\[\d+\]\.node: no node named "mastr"/],
    ['a step with neither run nor check', good.replace("  - name: the Kubernetes network model holds (unique pod IPs in one CIDR, no NAT across nodes)\n    check: kubernetes-model", '  - name: nothing'), /a step needs `check`, or `run`/],
    ['a recreate step that also runs a command', good.replace('    check: kubernetes-model', "    recreate: { pod: nginx-0 }\n    run: 'true'"), /steps\[\d+\]: a step needs `check`, or `run` with exactly one of `node` or `pod`, or `service`, `delete`, `recreate`, `scale` or `policy`/],
    ['a bad pod CIDR', good.replace('podCIDR: 10.10.0.0/16', 'podCIDR: 10.10.0.0/40'), /bad\.yaml:17: network\.podCIDR: "10\.10\.0\.0\/40" is not a CIDR/],
    ['a bad IPv6 pod CIDR', dual.replace('podCIDRv6: fd00:10::/48', 'podCIDRv6: fd00:10:::/48'), /bad\.yaml:\d+: network\.podCIDRv6: "fd00:10:::\/48" is not an IPv6 CIDR/],
    ['an IPv4 CIDR as podCIDRv6', dual.replace('podCIDRv6: fd00:10::/48', 'podCIDRv6: 10.20.0.0/16'), /network\.podCIDRv6: "10\.20\.0\.0\/16" is not an IPv6 CIDR/],
    ['IPv6 subnets larger than the IPv6 pod network', dual.replace('subnetLenV6: 64', 'subnetLenV6: 40'), /network\.subnetLenV6: \/40 is larger than the pod network fd00:10::\/48/],
    ['dual-stack on a datapath without it', readFileSync('labs/docker-bridge.yaml', 'utf8').replace(/podCIDR: (\S+)/, 'podCIDR: $1\n  podCIDRv6: fd00:10::/48'), /network\.podCIDRv6: the docker-bridge datapath in cnilab gives pods IPv4 only \(dual-stack: (?=[^)]*\bcilium\b)[^)]*\bcalico\b/],
    ['dual-stack calico on a backend without it', readFileSync('labs/calico-bgp-dual.yaml', 'utf8').replace('backend: bgp', 'backend: ipip'), /bad\.yaml:\d+: network\.backend: calico ipip carries IPv4 only \(as upstream: IPIP has no IPv6\); dual-stack \(podCIDRv6\) needs backend bgp or vxlan/],
    ['a route reflector that is not a node', readFileSync('labs/calico-bgp-rr.yaml', 'utf8').replace('routeReflectors: [rr]', 'routeReflectors: [rr, node9]'), /bad\.yaml:\d+: network\.routeReflectors\[1\]: no node named node9 in topology\.nodes \(rr, node1, node2, node3\)/],
    ['route reflectors on a calico lab without BGP', readFileSync('labs/calico-bgp-rr.yaml', 'utf8').replace('backend: bgp', 'backend: vxlan'), /bad\.yaml:\d+: network\.routeReflectors: route reflectors carry BGP routes: backend is vxlan/],
    ['dual-stack calico without an IPv6 underlay', readFileSync('labs/calico-bgp-dual.yaml', 'utf8').replace(/  underlayV6: .*\n/, '').replace(/, addressV6: '[^']+'/g, ''), /topology\.underlayV6: calico bgp carries IPv6 pods between the nodes' IPv6 addresses \(BGP sessions, as bird6\)/],
    ['dual-stack flannel on a backend without it', dual.replace('backend: vxlan', 'backend: udp'), /network\.backend: udp carries IPv4 only in cnilab/],
    ['dual-stack flannel without an IPv6 underlay', dual.replace(/  underlayV6: .*\n/, '').replace(/, addressV6: '[^']+'/g, ''), /topology\.underlayV6: flannel carries IPv6 pods over an IPv6 underlay/],
    ['a node IPv6 address outside the IPv6 underlay', dual.replace("'fd00:192:168:10::220'", "'fd00:192:168:11::220'"), /bad\.yaml:15: topology\.nodes\[1\]\.addressV6: fd00:192:168:11::220 is outside the underlay fd00:192:168:10::\/64/],
    ['more replicas than a node\'s subnet holds', good.replace('replicas: 3', 'replicas: 600'), /bad\.yaml:\d+: workloads\[0\]\.replicas: 600 replicas put more than 253 pods on node master: its \/24 of 10\.10\.0\.0\/16 holds 253/],
    ['a scale step beyond a node\'s subnet', good.replace("  - name: the Kubernetes network model holds (unique pod IPs in one CIDR, no NAT across nodes)\n    check: kubernetes-model", '  - name: grow\n    scale: { workload: nginx, replicas: 507 }'), /bad\.yaml:\d+: steps\[\d+\]\.scale\.replicas: 507 replicas put more than 253 pods on node master/],
    ['a node without its IPv6 address', dual.replace(", addressV6: 'fd00:192:168:10::220'", ''), /topology\.nodes\[1\]\.addressV6: is required on an IPv6 underlay/],
  ];
  it('takes as many replicas as the nodes\' subnets hold', () => {
    expect(loadLabText(good.replace('replicas: 3', 'replicas: 506')).workloads[0].replicas).to.equal(506);
    expect(loadLabText(good.replace('replicas: 3', 'replicas: 2000').replace('subnetLen: 24', 'subnetLen: 22')).workloads[0].replicas).to.equal(2000);
  });
  for (const [what, text, re] of cases) {
    it(`names file, line and field for ${what}`, () => {
      expect(labError(text).message).to.match(re);
    });
  }
});

describe('steps', () => {
  it('renders templates and names an unknown value', () => {
    expect(render('ping {{pods.a.ip}}', { 'pods.a.ip': '10.0.0.2' })).to.equal('ping 10.0.0.2');
    expect(() => render('{{nope}}', {})).to.throw(/unknown template value \{\{nope\}\}/);
  });
  it('|bytes prints an address as bpftool does: four bytes, or sixteen for IPv6', () => {
    expect(render('{{a|bytes}}', { a: '192.168.10.220' })).to.equal('192,168,10,220');
    expect(render('{{a|bytes}}', { a: 'fd00:10::2' })).to.equal('253,0,0,16,0,0,0,0,0,0,0,0,0,0,0,2');
  });
  it('reads JSON paths', () => {
    expect(jsonPath([{ linkinfo: { info_data: { id: 1 } } }], '0.linkinfo.info_data.id')).to.equal(1);
    expect(jsonPath([], '0.mtu')).to.equal(undefined);
  });
  it('reports what was expected and what came back', () => {
    const step = { name: 's', node: 'master', run: 'x', expect: { stdout: 'flannel\\.1' } } as any;
    const failure = checkExpectations(step, { stdout: 'cni0\n', stderr: '', exitCode: 0 }, {});
    expect(failure).to.include('/flannel\\.1/').and.include('cni0');
    expect(checkExpectations(step, { stdout: '', stderr: 'boom', exitCode: 2 }, {})).to.include('exit code 0, got 2');
    expect(checkExpectations(step, { stdout: 'dev flannel.1\n', stderr: '', exitCode: 0 }, {})).to.equal(undefined);
  });
  it('spreads replicas over nodes in turn, as the lesson shows', () => {
    expect(schedule('nginx', 3, ['master', 'worker']).map((p) => `${p.name}@${p.node}`)).to.deep.equal(['nginx-0@master', 'nginx-1@worker', 'nginx-2@master']);
  });
});
