// The lesson in numbers: cross-node TCP throughput of pod to pod with the
// eBPF datapath (cilium-ebpf, cilium-vxlan) beside plain routing
// (calico-bgp, flannel-host-gw) and a VXLAN bridge overlay (flannel-vxlan), each as a
// ratio to the raw underlay (node to node) measured in the same lab, between
// the same two nodes, alternating with it. Repeated; medians with min and max.
//
//   npm run bench:cilium -- [--repeat 3] [--seconds 3] [--labs a,b] [--json]
//
// iperf3 servers are started in the lab (recorded in its state) and stopped by PID.
import { parseArgs } from 'node:util';
import { release } from 'node:os';
import { LabInstance } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import type { Backend } from '../src/topologies/backend.js';

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    labs: { type: 'string', default: 'cilium-ebpf,cilium-vxlan,calico-bgp,flannel-host-gw,flannel-vxlan' },
    json: { type: 'boolean', default: false },
  },
});
const repeat = Number(values.repeat);
const seconds = Number(values.seconds);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Endpoint {
  node: string;
  pod?: string;
  ip: string;
}

async function iperf(backend: Backend, client: Endpoint, server: Endpoint, port: number): Promise<number> {
  const serverArgv = ['iperf3', '-s', '-p', String(port)];
  const s = server.pod ? await backend.podStart(server.node, server.pod, `iperf3-${port}`, serverArgv) : await backend.start(server.node, `iperf3-${port}`, serverArgv);
  try {
    const argv = ['iperf3', '-c', server.ip, '-p', String(port), '-t', String(seconds), '-J'];
    for (let attempt = 0; ; attempt++) {
      const r = client.pod ? await backend.podExec(client.node, client.pod, argv, { allowFailure: true }) : await backend.exec(client.node, argv, { allowFailure: true });
      const out = JSON.parse(r.stdout || '{}') as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
      if (out.end?.sum_received) return out.end.sum_received.bits_per_second / 1e9;
      // The server may not listen yet.
      if (attempt > 50 || !/connect|refused/i.test(out.error ?? '')) throw new Error(`iperf3 ${client.ip} -> ${server.ip}: ${out.error ?? r.stderr}`);
      await sleep(50);
    }
  } finally {
    await backend.stop(s.pid);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, d = 2) => Number(x.toFixed(d));

interface LabResult {
  lab: string;
  podMtu: number;
  underlayGbps: number[];
  podGbps: number[];
  ratios: number[];
}

async function measure(labName: string): Promise<LabResult> {
  const inst = LabInstance.open(labName, { name: `bench-${labName}` }, new QuietReporter());
  try {
    await inst.up();
    const pods = inst.pods.list().sort((a, b) => a.name.localeCompare(b.name));
    const client = pods.find((p) => p.node === 'master')!;
    const server = pods.find((p) => p.node === 'worker')!;
    const nodes = inst.lab.topology.nodes;
    const under = { client: { node: 'master', ip: nodes.find((n) => n.name === 'master')!.address }, server: { node: 'worker', ip: nodes.find((n) => n.name === 'worker')!.address } };
    const mtu = JSON.parse((await inst.backend.podExec(client.node, client.name, ['ip', '-j', 'link', 'show', 'eth0'])).stdout)[0].mtu as number;
    const result: LabResult = { lab: labName, podMtu: mtu, underlayGbps: [], podGbps: [], ratios: [] };
    for (let i = 0; i < repeat; i++) {
      // Underlay and pods alternate, so a slow moment on this shared machine hits both.
      const u = await iperf(inst.backend, under.client, under.server, 5201);
      const p = await iperf(inst.backend, { node: client.node, pod: client.name, ip: client.ip! }, { node: server.node, pod: server.name, ip: server.ip! }, 5202);
      result.underlayGbps.push(round(u));
      result.podGbps.push(round(p));
      result.ratios.push(round(p / u, 3));
      if (!values.json) console.error(`  ${labName} #${i + 1}: underlay ${u.toFixed(2)} Gb/s, pod to pod ${p.toFixed(2)} Gb/s, ratio ${(p / u).toFixed(3)}`);
    }
    return result;
  } finally {
    await inst.down();
  }
}

const results: LabResult[] = [];
for (const lab of values.labs!.split(',')) results.push(await measure(lab));

const summary = results.map((r) => ({
  lab: r.lab,
  podMtu: r.podMtu,
  underlayGbps: round(median(r.underlayGbps)),
  podGbps: round(median(r.podGbps)),
  ratio: round(median(r.ratios), 3),
  ratioMin: Math.min(...r.ratios),
  ratioMax: Math.max(...r.ratios),
}));
const meta = { kernel: release(), cpus: (await import('node:os')).cpus().length, repeat, seconds, test: 'iperf3 TCP, one stream, cross-node pod to pod (nginx-0 on master -> nginx-1 on worker)' };
if (values.json) {
  console.log(JSON.stringify({ ...meta, summary, runs: results }, null, 2));
} else {
  console.log(`\n${meta.test}; ${repeat} x ${seconds} s each, kernel ${meta.kernel}, ${meta.cpus} CPUs\n`);
  console.log(`${'lab'.padEnd(18)}${'pod MTU'.padStart(8)}${'underlay Gb/s'.padStart(15)}${'pods Gb/s'.padStart(11)}${'ratio (median)'.padStart(16)}${'min-max'.padStart(14)}`);
  for (const s of summary) {
    console.log(`${s.lab.padEnd(18)}${String(s.podMtu).padStart(8)}${s.underlayGbps.toFixed(2).padStart(15)}${s.podGbps.toFixed(2).padStart(11)}${s.ratio.toFixed(3).padStart(16)}${`${s.ratioMin.toFixed(2)}-${s.ratioMax.toFixed(2)}`.padStart(14)}`);
  }
}
