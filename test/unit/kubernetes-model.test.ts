// The Kubernetes model check's pure parts: a verdict per property, the step's
// judgement (with the properties a lab breaks on purpose), and every lab using it.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { addressVerdicts, answeredBy, formatVerdicts, judgeModel, mergeFamilies, type ModelVerdict } from '../../src/runner/kubernetes-model.js';
import { listLabFiles } from '../../src/lab/lab-file.js';
import { loadLab } from '../../src/datapaths/index.js';
import type { PodRecord } from '../../src/lab/state.js';
import { labErrorMessage } from '../helpers/errors.js';

describe('the Kubernetes model: one verdict per property', () => {
  const pod = (name: string, node: string, ip?: string) => ({ name, node, ip, netns: '', workload: 'nginx', status: 'Running', containerId: name }) as PodRecord;

  it('finds repeated addresses and names who holds them', () => {
    const [unique, one] = addressVerdicts([pod('nginx-0', 'master', '172.17.0.2'), pod('nginx-1', 'worker', '172.17.0.2')], '172.17.0.0/16');
    expect(unique).to.deep.include({ property: 'unique-ip', holds: false });
    expect(unique.detail).to.equal('172.17.0.2 is held by nginx-0 on master and by nginx-1 on worker');
    expect(one).to.deep.include({ property: 'one-network', holds: true });
  });

  it('measures "one pod network" against the lab\'s pod range', () => {
    const [, one] = addressVerdicts([pod('a', 'master', '192.168.10.65'), pod('b', 'worker', '192.168.10.210')], '192.168.10.64/27');
    expect(one.holds).to.equal(false);
    expect(one.detail).to.equal('b (worker, 192.168.10.210) is outside the pod network 192.168.10.64/27');
  });

  it('per family: IPv6 addresses against the IPv6 pod network, a pod without one named', () => {
    const dual = (name: string, node: string, ip: string, ip6?: string) => ({ ...pod(name, node, ip), ip6 }) as PodRecord;
    const pods = [dual('a', 'master', '10.10.0.2', 'fd00:10::2'), dual('b', 'worker', '10.10.1.2', 'fd00:10:0:1::2')];
    expect(addressVerdicts(pods, 'fd00:10::/48', 6).map((v) => v.holds)).to.deep.equal([true, true]);
    const [, outside] = addressVerdicts([...pods, dual('c', 'worker', '10.10.1.3', 'fd00:99::3')], 'fd00:10::/48', 6);
    expect(outside.detail).to.equal('c (worker, fd00:99::3) is outside the pod network fd00:10::/48');
    const [missing] = addressVerdicts([...pods, dual('d', 'worker', '10.10.1.4')], 'fd00:10::/48', 6);
    expect(missing).to.deep.include({ holds: false, detail: 'd got no address' });
    // An IPv4 address is never in an IPv6 pod network.
    expect(addressVerdicts([dual('e', 'master', '10.10.0.9', '10.10.0.9')], 'fd00:10::/48', 6)[1].holds).to.equal(false);
  });

  it('a dual-stack property holds only when it holds for both families', () => {
    const ok: ModelVerdict = { property: 'no-nat', holds: true, detail: 'fine' };
    const bad: ModelVerdict = { property: 'no-nat', holds: false, detail: 'NAT seen' };
    expect(mergeFamilies(ok, ok).holds).to.equal(true);
    expect(mergeFamilies(ok, bad)).to.deep.equal({ property: 'no-nat', holds: false, detail: 'IPv4: fine; IPv6: NAT seen' });
    expect(mergeFamilies(bad, ok).holds).to.equal(false);
  });

  it('a pod without an address breaks unique-ip', () => {
    expect(addressVerdicts([pod('a', 'master')], '10.10.0.0/16')[0]).to.deep.include({ holds: false, detail: 'a got no address' });
  });

  it('tells which pod answered from our nginx page', () => {
    expect(answeredBy('pod nginx-0 on master, address 172.17.0.2\n')).to.deep.equal({ pod: 'nginx-0', node: 'master' });
    expect(answeredBy('<html>')).to.equal(undefined);
  });

  const verdicts = (violated: string[]): ModelVerdict[] =>
    (['unique-ip', 'shared-ip', 'one-network', 'no-nat'] as const).map((property) => ({ property, holds: !violated.includes(property), detail: `evidence for ${property}` }));

  it('passes when every property holds and none was expected to fail', () => {
    expect(judgeModel(verdicts([]))).to.equal(undefined);
  });

  it('names each property that failed, with its evidence', () => {
    const failure = judgeModel(verdicts(['no-nat']))!;
    expect(failure).to.match(/^the Kubernetes network model: no-nat is violated: pods reach pods on other nodes at their own addresses, without NAT, but evidence for no-nat/);
    expect(failure).to.not.match(/unique-ip is violated/);
    expect(failure).to.include('✔ holds    unique-ip').and.include('✘ violated no-nat');
  });

  it('passes a lab that breaks the model on purpose only when exactly the declared properties fail', () => {
    expect(judgeModel(verdicts(['unique-ip', 'no-nat']), ['unique-ip', 'no-nat'])).to.equal(undefined);
    expect(judgeModel(verdicts(['unique-ip']), ['unique-ip', 'no-nat'])).to.match(/no-nat was expected to be violated in this lab, but it holds: evidence for no-nat/);
    expect(judgeModel(verdicts(['unique-ip', 'no-nat', 'shared-ip']), ['unique-ip', 'no-nat'])).to.match(/shared-ip is violated/);
  });

  it('prints one line per property', () => {
    expect(formatVerdicts(verdicts(['unique-ip'])).split('\n')).to.have.length(4);
  });
});

describe('lab files and the Kubernetes model', () => {
  it('every shipped lab checks the Kubernetes model', () => {
    for (const name of listLabFiles()) {
      const { lab } = loadLab(name);
      expect(lab.steps.some((s) => s.check === 'kubernetes-model'), `${name} has no kubernetes-model step`).to.equal(true);
    }
  });

  it('names file, line and field for a property the model does not have', () => {
    const good = readFileSync('labs/flannel-vxlan.yaml', 'utf8');
    const bad = good.replace('check: kubernetes-model', 'check: kubernetes-model\n    expect: { violates: [no-snat] }');
    expect(labErrorMessage(bad)).to.match(/bad\.yaml:\d+: steps\[\d+\]\.expect\.violates\[0\]: /);
  });
});
