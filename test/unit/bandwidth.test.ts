// The pure parts of traffic shaping: the bandwidth plugin's config and names,
// the token bucket it asks for, a pod's annotations read as a runtime reads
// them, and what a lab file may not say.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ifbName, loadBandwidthConf, tbfFor } from '../../src/cni/plugins/bandwidth.js';
import { parseNetConf } from '../../src/cni/config.js';
import { capabilityArgs } from '../../src/runner/pods.js';
import { bandwidthFromAnnotations, parseQuantity } from '../../src/lab/pod-bandwidth.js';
import type { PodRecord } from '../../src/lab/state.js';
import { cniError, labErrorMessage } from '../helpers/errors.js';

const conf = (extra: Record<string, unknown>) => loadBandwidthConf(parseNetConf({ cniVersion: '1.0.0', name: 'cbr0', type: 'bandwidth', ...extra }));

describe('bandwidth plugin: config, names, buckets', () => {
  it('reads runtimeConfig.bandwidth; the plugin\'s own fields win, as in the reference', () => {
    expect(conf({ runtimeConfig: { bandwidth: { ingressRate: 1000, ingressBurst: 80 } } }).bandwidth).to.deep.equal({ ingressRate: 1000, ingressBurst: 80, egressRate: 0, egressBurst: 0 });
    expect(conf({ egressRate: 8000, egressBurst: 800, runtimeConfig: { bandwidth: { ingressRate: 1000, ingressBurst: 80 } } }).bandwidth).to.deep.equal({ ingressRate: 0, ingressBurst: 0, egressRate: 8000, egressBurst: 800 });
  });

  it('names the field that is missing or wrong', () => {
    expect(cniError(() => conf({ runtimeConfig: { bandwidth: { ingressBurst: 80 } } })).message).to.include('runtimeConfig.bandwidth.ingressRate: is required when ingressBurst is set');
    expect(cniError(() => conf({ egressRate: -1 })).message).to.include('egressRate: -1 is below the minimum 0');
    expect(cniError(() => conf({ egressRate: 8000, egressBurst: 2 ** 36 })).message).to.include('egressBurst: cannot be more than 4 GB');
  });

  it('names the ifb as the reference does: bwp + sha512(network + container ID), 15 characters', () => {
    expect(ifbName('cbr0', 'abc')).to.match(/^bwp[0-9a-f]{12}$/);
    expect(ifbName('cbr0', 'abc')).to.not.equal(ifbName('cbr0', 'abd'));
  });

  it('asks tc for bytes: the rate, the burst, and a queue of 25 ms at the rate plus the burst', () => {
    expect(tbfFor(100e6, 2 ** 32 - 1)).to.deep.equal({ rate: 12_500_000, burst: 536_870_911, limit: 312_500 + 536_870_911 });
  });
});

describe('pod annotations to runtimeConfig.bandwidth, as containerd and CRI-O read them', () => {
  const pod = (annotations?: Record<string, string>): PodRecord => ({ name: 'p', node: 'n', netns: '/x', workload: 'w', status: 'Pending', containerId: 'c', annotations });

  it('reads Kubernetes quantities in bits per second', () => {
    expect([parseQuantity('100M'), parseQuantity('1Gi'), parseQuantity('1.5k'), parseQuantity('10')]).to.deep.equal([100e6, 2 ** 30, 1500, 10]);
    expect(parseQuantity('100 Mbit')).to.match(/is not a quantity/);
  });

  it('passes both directions with the runtimes\' burst of 2^32-1 bits, only to a plugin with the bandwidth capability', () => {
    const annotations = { 'kubernetes.io/ingress-bandwidth': '100M', 'kubernetes.io/egress-bandwidth': '10M' };
    const bw = { ingressRate: 100e6, ingressBurst: 2 ** 32 - 1, egressRate: 10e6, egressBurst: 2 ** 32 - 1 };
    expect(bandwidthFromAnnotations(annotations)).to.deep.equal(bw);
    expect(capabilityArgs({ type: 'bandwidth', capabilities: { bandwidth: true } }, pod(annotations))).to.deep.equal({ bandwidth: bw });
    expect(capabilityArgs({ type: 'flannel' }, pod(annotations))).to.equal(undefined);
    expect(capabilityArgs({ type: 'bandwidth', capabilities: { bandwidth: true } }, pod({ other: 'x' }))).to.equal(undefined);
  });

  it('a lab file with a bandwidth annotation that is no quantity, or below 1 kbit/s, names file, line and field', () => {
    const lab = readFileSync('labs/flannel-bandwidth.yaml', 'utf8');
    expect(labErrorMessage(lab.replace("kubernetes.io/ingress-bandwidth: 100M", "kubernetes.io/ingress-bandwidth: fast"))).to.match(
      /bad\.yaml:\d+: workloads\[0\]\.annotations\.kubernetes\.io\/ingress-bandwidth: "fast" is not a quantity/,
    );
    expect(labErrorMessage(lab.replace("kubernetes.io/egress-bandwidth: 100M", "kubernetes.io/egress-bandwidth: '10'"))).to.match(/egress-bandwidth: 10 is unreasonably small/);
  });
});
