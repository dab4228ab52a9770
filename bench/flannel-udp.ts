// `npm run bench:flannel-udp`: single-stream TCP throughput (iperf3) from a pod
// on master to a pod on worker through flannel's UDP backend, next to the raw
// underlay (node to node) measured in the same run. With --offload both
// (default) the lab runs twice: with TSO super-packets through flannel0, and
// with one kernel/user-space trip per packet, which is the lesson's cost.
// Options: --seconds 5 --repeat 3 --offload on|off|both --json
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { parseArgs } from 'node:util';
import { LabInstance } from '../src/runner/runner.js';
import { QuietReporter } from '../src/runner/reporter.js';
import type { Backend } from '../src/topologies/backend.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    repeat: { type: 'string', default: '3' },
    offload: { type: 'string', default: 'both' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const repeat = Number(values.repeat);
const modes = values.offload === 'both' ? [true, false] : [values.offload !== 'off'];
const IPERF_PORT = '5201';

interface Where {
  node: string;
  pod?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start `iperf3 -s` by PID, run the client `repeat` times, stop the server by its PID. */
async function iperf(backend: Backend, server: Where, client: Where, address: string): Promise<number[]> {
  const argv = ['iperf3', '-s', '-p', IPERF_PORT];
  const started = server.pod ? await backend.podStart(server.node, server.pod, 'iperf3', argv) : await backend.start(server.node, 'iperf3', argv);
  try {
    for (let i = 0; i < 200 && !readFileSync(started.log, 'utf8').includes('Server listening'); i++) await sleep(10);
    const gbps: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const cmd = ['iperf3', '-c', address, '-p', IPERF_PORT, '-t', String(seconds), '-J'];
      const r = client.pod ? await backend.podExec(client.node, client.pod, cmd) : await backend.exec(client.node, cmd);
      const report = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      gbps.push(report.end.sum_received.bits_per_second / 1e9);
    }
    return gbps;
  } finally {
    await backend.stop(started.pid);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = (xs: number[]) => ({ medianGbps: +median(xs).toFixed(3), minGbps: +Math.min(...xs).toFixed(3), maxGbps: +Math.max(...xs).toFixed(3) });

async function measure(offload: boolean) {
  const inst = LabInstance.open('flannel-udp', { name: `bench-udp-${offload ? 'tso' : 'pkt'}` }, new QuietReporter());
  inst.lab.network.backendConfig = { Offload: offload };
  try {
    await inst.up();
    const pods = inst.pods.list();
    const a = pods.find((p) => p.node === 'master')!;
    const b = pods.find((p) => p.node === 'worker')!;
    const worker = inst.lab.topology.nodes.find((n) => n.name === 'worker')!;
    const underlay = await iperf(inst.backend, { node: 'worker' }, { node: 'master' }, worker.address);
    const overlay = await iperf(inst.backend, { node: b.node, pod: b.name }, { node: a.node, pod: a.name }, b.ip!);
    const tun = await inst.backend.exec('master', ['ip', '-d', '-j', 'link', 'show', 'flannel0']);
    const link = JSON.parse(tun.stdout)[0] as { mtu: number; gso_max_size: number };
    return {
      offload,
      flannel0: { mtu: link.mtu, gsoMaxSize: link.gso_max_size },
      underlay: summary(underlay),
      podToPod: summary(overlay),
      ratioToUnderlay: +(median(overlay) / median(underlay)).toFixed(3),
    };
  } finally {
    await inst.down();
  }
}

const results = [];
for (const offload of modes) results.push(await measure(offload));
const iperfVersion = (await import('node:child_process')).execFileSync('iperf3', ['--version']).toString().split('\n')[0];
const report = { lab: 'flannel-udp', kernel: release(), iperf3: iperfVersion, node: process.version, seconds, repeat, results };
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`flannel-udp: iperf3, one TCP stream, ${seconds} s × ${repeat} (medians; min–max), kernel ${report.kernel}\n`);
  for (const r of results) {
    const mode = r.offload ? 'TSO super-packets through flannel0' : 'one trip per packet (offload off)';
    console.log(`${mode} (flannel0 MTU ${r.flannel0.mtu}):`);
    console.log(`  underlay node→node   ${r.underlay.medianGbps.toFixed(2)} Gbit/s (${r.underlay.minGbps}–${r.underlay.maxGbps})`);
    console.log(`  pod→pod across nodes ${r.podToPod.medianGbps.toFixed(2)} Gbit/s (${r.podToPod.minGbps}–${r.podToPod.maxGbps}), ${(r.ratioToUnderlay * 100).toFixed(1)}% of the underlay`);
  }
}
