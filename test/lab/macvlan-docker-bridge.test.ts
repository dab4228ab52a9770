// The macvlan underlay and the docker-bridge baseline, whole, on the real kernel:
// every lesson step passes through the runner and nothing is left behind; CNI
// CHECK agrees with the kernel; the Kubernetes model check names what docker0 breaks.
import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { LabInstance, runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { runStep } from '../../src/runner/steps.js';
import { dnatChainName } from '../../src/cni/plugins/portmap.js';
import { failures, leftovers } from '../helpers/lab.js';

/** Up, `fn`, down: the lab is removed whatever `fn` does. */
async function withLab(lab: string, name: string, fn: (inst: LabInstance) => Promise<void>): Promise<void> {
  const inst = LabInstance.open(lab, { name }, new QuietReporter());
  try {
    await inst.up();
    await fn(inst);
  } finally {
    await inst.down();
  }
  expect(leftovers(name)).to.deep.equal([]);
}

describe('lab: macvlan (IPv4 and dual-stack) and docker-bridge', function () {
  this.timeout(120_000);
  before(() => requireBuilt());

  for (const lab of ['macvlan', 'macvlan-dual', 'docker-bridge']) {
    it(`${lab}: every lesson step passes and nothing is left behind`, async () => {
      const r = await runLab(lab, {}, new QuietReporter());
      expect(r.ok, failures(r)).to.equal(true);
      expect(r.steps.length).to.be.greaterThan(10);
      expect(r.steps.at(-1)!.stdout, 'the model check prints a verdict per property').to.match(/unique-ip[^\n]*\n[^\n]*shared-ip[^\n]*\n[^\n]*one-network[^\n]*\n[^\n]*no-nat/);
      expect(leftovers(lab)).to.deep.equal([]);
    });
  }

  it('macvlan: CNI CHECK passes for every pod and names an address the pod lost; DEL releases the address, twice', async () => {
    await withLab('macvlan', 'mvcheck', async (inst) => {
      const pods = inst.pods.list();
      for (const pod of pods) await inst.pods.cniCheck(pod);
      const pod = pods[0];
      await inst.backend.podExec(pod.node, pod.name, ['ip', 'addr', 'del', `${pod.ip}/24`, 'dev', 'eth0']);
      const err = await inst.pods.cniCheck(pod).catch((e: Error) => e);
      expect(String(err)).to.match(new RegExp(`plugin macvlan failed \\(code 102\\): CHECK failed: eth0 lacks ${pod.ip!.replace(/\./g, '\\.')}/24`));

      // DEL gives the address back and removes the macvlan; a second DEL finds nothing to do and succeeds.
      await inst.pods.cniDel(pod);
      await inst.pods.cniDel(pod);
      expect(readdirSync(inst.backend.nodePath(pod.node, '/var/lib/cni/networks/macvlan'))).to.not.include(pod.ip);
      expect((await inst.backend.podExec(pod.node, pod.name, ['ip', 'link', 'show', 'eth0'], { allowFailure: true })).exitCode).to.not.equal(0);
    });
  });

  it('docker-bridge: CHECK finds a missing DNAT chain; the model check without `violates` names both broken properties; DEL removes the DNAT chain', async () => {
    await withLab('docker-bridge', 'dbcheck', async (inst) => {
      const pods = inst.pods.list();
      for (const pod of pods) await inst.pods.cniCheck(pod);

      const worker = pods.find((p) => p.node === 'worker')!;
      const chain = dnatChainName('bridge', worker.containerId);
      await inst.backend.exec('worker', ['sh', '-c', `iptables -w -t nat -D CNI-HOSTPORT-DNAT -m comment --comment "name: bridge id: ${worker.containerId}" -j ${chain} && iptables -w -t nat -F ${chain} && iptables -w -t nat -X ${chain}`]);
      const err = await inst.pods.cniCheck(worker).catch((e: Error) => e);
      expect(String(err)).to.match(new RegExp(`plugin portmap failed \\(code 102\\): CHECK failed: the DNAT chain ${chain} of container \\w+ does not exist`));

      const ctx = { backend: inst.backend, lab: inst.lab, pods, vars: inst.vars };
      const o = await runStep(ctx, { name: 'the model, claimed', check: 'kubernetes-model' });
      expect(o.ok).to.equal(false);
      expect(o.failure).to.match(/unique-ip is violated: .*172\.17\.0\.2 is held by nginx-0 on master and by nginx-1 on worker/);
      expect(o.failure).to.match(/no-nat is violated: .*was answered by nginx-\d on \w+ \(itself\)/);
      expect(o.failure).to.not.match(/shared-ip is violated|one-network is violated/);

      // DEL removes the pod's DNAT chain and the jump to it, also when they are already gone.
      await inst.pods.cniDel(worker);
      const master = pods.find((p) => p.node === 'master')!;
      await inst.pods.cniDel(master);
      await inst.pods.cniDel(master);
      const nat = (await inst.backend.exec('master', ['iptables', '-w', '-t', 'nat', '-S'])).stdout;
      expect(nat).to.not.include(dnatChainName('bridge', master.containerId));
      expect(nat).to.include('-N CNI-HOSTPORT-DNAT');
    });
  });
});
