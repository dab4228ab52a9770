// Services on whole labs: ClusterIP, NodePort, affinity, cluster DNS and
// endpoints that follow pods, in kube-proxy's iptables mode (flannel VXLAN),
// nftables mode (Calico BGP) and ebpf mode (the cilium datapath's service
// maps); nothing is left behind. The diagram and a trace to a service on two of them.
import { expect } from 'chai';
import { LabInstance, runLab } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt } from '../../src/lab/paths.js';
import { failures, leftovers } from '../helpers/lab.js';
import { inspectLab } from '../../src/workshop/inspect.js';
import { renderText } from '../../src/workshop/render-text.js';
import { renderSvg } from '../../src/workshop/render-svg.js';
import { traceLab } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';

describe('lab: services (kube-proxy iptables, nftables and ebpf modes, cluster DNS)', function () {
  this.timeout(180_000);
  before(() => requireBuilt());

  for (const [lab, mode] of [
    ['flannel-vxlan-services', 'iptables'],
    ['calico-bgp-services', 'nftables'],
    ['cilium-ebpf-services', 'ebpf'],
  ] as const) {
    it(`${lab} (${mode}): every service step passes and nothing is left behind`, async () => {
      const reporter = new QuietReporter();
      const r = await runLab(lab, {}, reporter);
      expect(r.ok, failures(r)).to.equal(true);
      const names = r.steps.map((s) => s.name).join('\n');
      // The steps that carry the lesson are there and ran.
      for (const must of [/spread over all three replicas/, /NodePort from the other node/, /session affinity/, /delete pod web-2/, /headless service/]) expect(names).to.match(must);
      expect(leftovers(lab)).to.deep.equal([]);
    });
  }

  // Each lab in the other mode its datapath runs: the connectivity, DNS, NodePort, affinity and
  // endpoint steps hold alike; the steps that read one mode's rules are skipped, naming the mode.
  for (const [lab, mode, other] of [
    ['flannel-vxlan-services', 'nftables', 'iptables'],
    ['calico-bgp-services', 'iptables', 'nftables'],
  ] as const) {
    it(`${lab} with --proxy-mode ${mode}: every step but those written for ${other} passes, and those say why they were skipped`, async () => {
      const r = await runLab(lab, { proxyMode: mode }, new QuietReporter());
      expect(r.ok, failures(r)).to.equal(true);
      const skipped = r.steps.filter((s) => s.skipped);
      expect(skipped.length).to.be.greaterThan(2);
      for (const s of skipped) expect(s.skipped).to.equal(`written for kube-proxy's ${other} mode; this run uses ${mode}`);
      const ran = r.steps.filter((s) => !s.skipped).map((s) => s.name).join('\n');
      for (const must of [/spread over all three replicas/, /NodePort from the other node/, /session affinity/, /delete pod web-2/, /headless service/]) expect(ran).to.match(must);
      expect(leftovers(lab)).to.deep.equal([]);
    });
  }
});

describe('workshop on services: the diagram lists them, a trace to a service shows its translation', function () {
  this.timeout(180_000);

  for (const [labName, instance, mode, where] of [
    ['flannel-vxlan-services', 'ws-svc-ipt', 'iptables', /KUBE-SERVICES: 10\.96\.0\.11:80\/TCP jumps to (KUBE-SVC-\w{16}), which picks one of 3 at random \(statistic random\) → KUBE-SEP-\w{16}: DNAT to /],
    ['cilium-ebpf-services', 'ws-svc-bpf', 'ebpf', /looks 10\.96\.0\.11:80\/TCP up in lb4_services: slot 0 says 3 backends, .* rewrites the destination to /],
  ] as const) {
    it(`${labName} (${mode}): the diagram's model, text and SVG have every service and its endpoints; trace client-1 web names the ${mode === 'ebpf' ? 'map' : 'chains'} and the pod that answered`, async () => {
      const lab = LabInstance.open(labName, { name: instance }, new QuietReporter());
      try {
        await lab.up();
        const nodes = ['master', 'worker'];
        const model = await inspectLab(lab.backend, lab.state.state, nodes);
        const web = model.services?.services.find((s) => s.name === 'web');
        expect(web?.clusterIP).to.equal('10.96.0.11');
        expect(web?.endpoints.map((e) => e.pod)).to.deep.equal(['web-0', 'web-1', 'web-2']);
        expect(model.services?.proxies.map((p) => `${p.node} ${p.mode}`)).to.deep.equal([`master ${mode}`, `worker ${mode}`]);
        expect(renderText(model).join('\n')).to.match(/services: kube-proxy \w+ on master \(\d+ (rules|map entries), generation \d+\)/);
        expect(renderSvg(model)).to.include('default/web ClusterIP 10.96.0.11 80/TCP');

        const r = await traceLab(lab.backend, lab.state.state, nodes, 'client-1', 'web');
        const text = formatTrace(r).join('\n');
        expect(r.service, text).to.include({ name: 'default/web', frontend: '10.96.0.11:80/TCP', mode, chosen: 'answered' });
        expect(['web-0', 'web-1', 'web-2']).to.include(r.service!.endpoint);
        expect(r.to.ns).to.equal(`pod/${r.service!.endpoint}`);
        const nat = r.hops.find((h) => h.kind === 'nat' && h.text.includes('of default/web'));
        expect(nat?.at, text).to.equal('worker');
        expect(nat?.text, text).to.match(where);
        if (mode === 'iptables') expect(r.delivered, text).to.equal(true);
      } finally {
        await lab.down();
      }
      expect(leftovers(instance)).to.deep.equal([]);
    });
  }
});
