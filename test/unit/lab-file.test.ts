import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { loadLab } from '../../src/datapaths/index.js';
import { render, jsonPath, checkExpectations } from '../../src/runner/steps.js';
import { schedule } from '../../src/runner/pods.js';
import { labError } from '../helpers/errors.js';

const good = readFileSync('labs/flannel-vxlan.yaml', 'utf8');

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
    ['a bad pod CIDR', good.replace('podCIDR: 10.10.0.0/16', 'podCIDR: 10.10.0.0/40'), /bad\.yaml:17: network\.podCIDR: "10\.10\.0\.0\/40" is not a CIDR/],
  ];
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
