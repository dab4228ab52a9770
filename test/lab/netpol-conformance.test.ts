// Kubernetes' NetworkPolicy e2e scenarios against Calico's engine on the real
// kernel: nine pods (a, b, c in namespaces x, y, z) on two nodes, each serving
// TCP (nginx) and UDP (an echo server) on ports 80 and 81. Per scenario the
// policies go to the datastore, calico-node programs every node, and every pod
// probes every other pod; the truth table must match upstream's. Scenarios
// cnilab cannot express are listed as skipped, with the reason in the title.
import { expect } from 'chai';
import { join } from 'node:path';
import { LabInstance } from '../../src/runner/runner.js';
import { QuietReporter } from '../../src/runner/reporter.js';
import { requireBuilt, ROOT } from '../../src/lab/paths.js';
import { datapath } from '../../src/datapaths/index.js';
import type { PolicyEngine } from '../../src/datapaths/types.js';
import type { PodRecord } from '../../src/lab/state.js';
import { np, PODS, Reach, SCENARIOS, type Protocol } from '../helpers/netpol-scenarios.js';
import { waitUntil } from '../../src/util/wait.js';
import { traceLab } from '../../src/workshop/trace-run.js';
import { formatTrace } from '../../src/workshop/render-trace.js';
import { AGENT_POLICY } from '../../src/datapaths/cilium/install.js';
import { FIRST_CIDR_IDENTITY, type CompiledPolicy } from '../../src/policy/cilium.js';

const podName = (p: string) => `${p.replace('/', '-')}-0`;

// Answers every datagram on 80 and 81, so a UDP probe can tell delivered from dropped.
const ECHO = "const d=require('dgram');for(const p of [80,81]){const s=d.createSocket('udp4');s.on('message',(m,r)=>s.send('ok',r.port,r.address));s.bind(p)}";
// Tries every address at once with bash's /dev/tcp and /dev/udp: a TCP connect under
// timeout, or a datagram and its echo, waited for by read -t in the same shell (no
// reader process that could outlive a timeout); prints "<ip> 1|0" per address.
const PROBE = `proto=$1 port=$2 t=$3; shift 3
for ip in "$@"; do (
  if [ "$proto" = TCP ]; then timeout "$t" bash -c "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null && echo "$ip 1" || echo "$ip 0"
  else { exec 3<>/dev/udp/$ip/$port && printf ping >&3 && read -r -t "$t" -N 2 r <&3 && [ "$r" = ok ]; } 2>/dev/null && echo "$ip 1" || echo "$ip 0"; fi
) & done; wait`;

for (const engineName of ['calico', 'cilium']) {
describe(`NetworkPolicy conformance: upstream e2e scenarios on the ${engineName} engine (real kernel)`, function () {
  this.timeout(600_000);
  const LAB = join(ROOT, `test/fixtures/netpol-${engineName}.yaml`);
  let inst: LabInstance;
  let engine: PolicyEngine;
  const pod = (p: string): PodRecord => inst.pods.list().find((x) => x.name === podName(p))!;
  const ip = (p: string) => pod(p).ip!;

  before(async () => {
    requireBuilt();
    inst = LabInstance.open(LAB, {}, new QuietReporter());
    await inst.up();
    engine = datapath(inst.lab.network.plugin).policy!;
    for (const p of inst.pods.list()) await inst.backend.podStart(p.node, p.name, 'udp-echo', [process.execPath, '-e', ECHO]);
    // podStart returns once the process exists; on a loaded machine Node takes seconds to
    // bind, and a UDP probe sent before that is a false "blocked".
    for (const p of inst.pods.list()) {
      await waitUntil(async () => (await inst.backend.podExec(p.node, p.name, ['ss', '-Hlun', 'sport = :80 or sport = :81'])).stdout.trim().split('\n').filter(Boolean).length === 2, {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: `the UDP echo server of ${p.name} to bind ports 80 and 81`,
      });
    }
  });
  after(async () => {
    await inst?.down();
  });

  /** Which pairs connect: every pod probes every other pod at once. */
  async function probe(protocol: Protocol, port: number, timeoutMs: number, sources = PODS): Promise<Map<string, boolean>> {
    const byIp = new Map(PODS.map((p) => [ip(p), p]));
    const out = new Map<string, boolean>();
    await Promise.all(
      sources.map(async (src) => {
        const targets = PODS.filter((p) => p !== src).map(ip);
        const s = pod(src);
        const r = await inst.backend.podExec(s.node, s.name, ['bash', '-c', PROBE, 'probe', protocol, String(port), String(timeoutMs / 1000), ...targets]);
        for (const line of r.stdout.trim().split('\n')) {
          const [addr, ok] = line.split(' ');
          out.set(`${src}>${byIp.get(addr)}`, ok === '1');
        }
      }),
    );
    return out;
  }

  /** Pairs that differ from the table; a pair that should connect and did not is tried again, slower, before it counts. */
  async function check(protocol: Protocol, port: number, want: Reach): Promise<string[]> {
    const got = await probe(protocol, port, 500);
    const missed = [...want.table].filter(([pair, ok]) => ok && !got.get(pair)).map(([pair]) => pair.split('>')[0]);
    if (missed.length) for (const [pair, ok] of await probe(protocol, port, 3000, [...new Set(missed)])) if (ok) got.set(pair, true);
    return [...want.table].filter(([pair, ok]) => got.get(pair) !== ok).map(([pair, ok]) => `${protocol}/${port} ${pair}: expected ${ok ? 'allowed' : 'blocked'}, got ${ok ? 'blocked' : 'allowed'}`);
  }

  async function relabel(p: string, labels: Record<string, string>): Promise<void> {
    const rec = { ...pod(p), labels };
    inst.pods.save(rec);
    await engine.podAdded(inst.backend, inst.lab, rec, inst.pods.hostInterface(rec.name)!);
  }

  async function labelNamespace(ns: string, labels: Record<string, string>): Promise<void> {
    inst.lab.namespaces.find((n) => n.name === ns)!.labels = labels;
    await engine.podAdded(inst.backend, inst.lab, pod(`${ns}/a`), inst.pods.hostInterface(podName(`${ns}/a`))!);
  }

  it('with no policy every pod reaches every pod, TCP and UDP, on 80 and 81', async () => {
    await engine.setPolicies(inst.backend, inst.lab, []);
    for (const protocol of ['TCP', 'UDP'] as const) for (const port of [80, 81]) expect(await check(protocol, port, new Reach())).to.deep.equal([]);
  });

  for (const s of SCENARIOS) {
    const unsupported = s.unsupported ?? s.unsupportedOn?.[engineName];
    if (unsupported) {
      it.skip(`${s.name} - unsupported: ${unsupported}`);
      continue;
    }
    it(s.name, async () => {
      let policies = [] as NonNullable<ReturnType<NonNullable<typeof s.phases>>[number]['policies']>;
      const relabelled = new Set<string>();
      const nsRelabelled = new Set<string>();
      try {
        for (const phase of s.phases!(ip)) {
          policies = phase.policies ?? policies;
          for (const [p, labels] of Object.entries(phase.podLabels ?? {})) {
            relabelled.add(p);
            await relabel(p, labels);
          }
          for (const [ns, labels] of Object.entries(phase.namespaceLabels ?? {})) {
            nsRelabelled.add(ns);
            await labelNamespace(ns, { ns, ...labels });
          }
          await engine.setPolicies(inst.backend, inst.lab, policies);
          const problems: string[] = [];
          for (const probe of phase.probes) problems.push(...(await check(probe.protocol, probe.port, probe.expect)));
          expect(problems).to.deep.equal([]);
        }
      } finally {
        for (const p of relabelled) await relabel(p, { pod: p.split('/')[1] });
        for (const ns of nsRelabelled) await labelNamespace(ns, { ns });
        await engine.setPolicies(inst.backend, inst.lab, []);
      }
    });
  }

  it('cnilab trace names the policy whose DROP rule took the ping, and the node', async () => {
    const deny = np('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
    await engine.setPolicies(inst.backend, inst.lab, [deny]);
    try {
      const nodes = inst.lab.topology.nodes.map((n) => n.name);
      const r = await traceLab(inst.backend, inst.state.state, nodes, podName('y/a'), podName('x/a'));
      expect(r.reachable).to.equal(false);
      expect(r.policyDrops).to.have.length(1);
      expect(r.policyDrops![0]).to.deep.include({ node: pod('x/a').node, direction: 'ingress', policies: ['x/deny-ingress'] });
      expect(formatTrace(r).join('\n')).to.match(/✘ dropped by NetworkPolicy on node master: ingress of (the pod|pod x\/x-a-0) is isolated by x\/deny-ingress and no rule allows it \((iptables chain cali-tw-cali[0-9a-f]{11}|BPF drops map \(endpoint ifindex \d+, reason 133 Policy denied\)) counted 1\)/);
      const open = await traceLab(inst.backend, inst.state.state, nodes, podName('x/a'), podName('y/a'));
      expect(open.reachable).to.equal(true);
      expect(open.policyDrops).to.equal(undefined);
    } finally {
      await engine.setPolicies(inst.backend, inst.lab, []);
    }
  });

  /** Whether master's datapath holds an address as a selector member: in an ipset (calico), in the ipcache with a label identity (cilium). */
  async function known(address: string): Promise<boolean> {
    if (engineName === 'calico') return (await inst.backend.exec('master', ['ipset', 'list', '-o', 'save'])).stdout.includes(` ${address}\n`);
    const compiled = JSON.parse((await inst.backend.readFile('master', AGENT_POLICY)) ?? '{}') as CompiledPolicy;
    return (compiled.ipcache ?? []).some((e) => e.cidr === `${address}/32` && e.identity < FIRST_CIDR_IDENTITY);
  }

  it('cnilab: pods that come and go - a new pod matching an allowed selector is let in, and a removed pod leaves the selector', async () => {
    const allowB = np('x', 'allow-from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] });
    await engine.setPolicies(inst.backend, inst.lab, [allowB]);
    const xa = pod('x/a');
    const spec = { name: 'x-b2-0', node: 'master', workload: 'x-b2', namespace: 'x', labels: { pod: 'b' } };
    const extra = await inst.pods.create(spec);
    try {
      const connect = async (from: PodRecord) =>
        (await inst.backend.podExec(from.node, from.name, ['bash', '-c', PROBE, 'probe', 'TCP', '80', '2', xa.ip!])).stdout.trim();
      expect(await connect(extra), 'before the agent knows the pod, its address is in no selector').to.equal(`${xa.ip} 0`);
      await engine.podAdded(inst.backend, inst.lab, extra, inst.pods.hostInterface(extra.name)!);
      await engine.setPolicies(inst.backend, inst.lab, [allowB]);
      expect(await connect(extra)).to.equal(`${xa.ip} 1`);
      expect(await known(extra.ip!), 'the new address is a member of the selector').to.equal(true);
      await inst.pods.remove(extra);
      await engine.podRemoved(inst.backend, inst.lab, extra);
      await engine.setPolicies(inst.backend, inst.lab, [allowB]);
      expect(await known(extra.ip!), 'the removed address is gone').to.equal(false);
      expect(await known(ip('x/b'))).to.equal(true);
    } finally {
      if (inst.pods.list().some((p) => p.name === extra.name)) await inst.pods.remove(extra).catch(() => undefined);
      await engine.setPolicies(inst.backend, inst.lab, []);
    }
  });
});
}
