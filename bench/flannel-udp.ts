// `npm run bench:flannel-udp`: single-stream TCP throughput (iperf3) from a pod
// on master to a pod on worker through flannel's UDP backend, next to the raw
// underlay (node to node) measured in the same lab, and to the kernel's own
// VXLAN overlay (flannel-vxlan) as the in-kernel reference. With --offload both
// (default) the UDP lab runs twice: with TSO super-packets through flannel0,
// and with one kernel/user-space round trip per packet, the lesson's cost.
// Options: --seconds 5 --repeat 3 --offload on|off|both --no-vxlan --json
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
    'no-vxlan': { type: 'boolean', default: false },
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

/** `iperf3 -s`, started by PID and ready; stop it with backend.stop(pid). */
async function iperfServer(backend: Backend, at: Where): Promise<number> {
  const argv = ['iperf3', '-s', '-p', IPERF_PORT];
  const started = at.pod ? await backend.podStart(at.node, at.pod, 'iperf3', argv) : await backend.start(at.node, 'iperf3', argv);
  for (let i = 0; i < 300 && !readFileSync(started.log, 'utf8').includes('Server listening'); i++) await sleep(10);
  return started.pid;
}

/** One client run: what the server received, in Gbit/s. */
async function iperfClient(backend: Backend, at: Where, address: string): Promise<number> {
  const cmd = ['iperf3', '-c', address, '-p', IPERF_PORT, '-t', String(seconds), '-J'];
  const r = at.pod ? await backend.podExec(at.node, at.pod, cmd) : await backend.exec(at.node, cmd);
  const report = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return report.end.sum_received.bits_per_second / 1e9;
}

/** CPU time (user + system, all threads) of these processes so far, in seconds; clock ticks are 1/100 s on Linux. */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 on
    ticks += Number(rest[11]) + Number(rest[12]); // utime, stime
  }
  return ticks / 100;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const summary = (xs: number[]) => ({ medianGbps: +median(xs).toFixed(3), minGbps: +Math.min(...xs).toFixed(3), maxGbps: +Math.max(...xs).toFixed(3) });

interface Config {
  lab: string;
  label: string;
  backendConfig?: Record<string, unknown>;
}

const CONFIGS: Config[] = [
  ...(values['no-vxlan'] ? [] : [{ lab: 'flannel-vxlan', label: 'vxlan in the kernel (reference)' }]),
  ...modes.map((offload) => ({
    lab: 'flannel-udp',
    label: offload ? 'udp, TSO super-packets' : 'udp, one trip per packet',
    backendConfig: { Offload: offload },
  })),
];

async function measure(config: Config) {
  const inst = LabInstance.open(config.lab, { name: `bench-${config.lab}` }, new QuietReporter());
  if (config.backendConfig) inst.lab.network.backendConfig = config.backendConfig;
  try {
    await inst.up();
    const pods = inst.pods.list();
    const a = pods.find((p) => p.node === 'master')!;
    const b = pods.find((p) => p.node === 'worker')!;
    const worker = inst.lab.topology.nodes.find((n) => n.name === 'worker')!;
    // The two servers run side by side; the runs alternate, so both see the same machine load.
    const servers = [await iperfServer(inst.backend, { node: worker.name }), await iperfServer(inst.backend, { node: b.node, pod: b.name })];
    const underlay: number[] = [];
    const overlay: number[] = [];
    // What the daemons spend per byte does not depend on how busy the machine is: the lesson's cost, measured.
    const agents = inst.state.state.processes.filter((p) => p.name === 'flanneld').map((p) => p.pid);
    let agentCpu = 0;
    let gigabytes = 0;
    try {
      for (let i = 0; i < repeat; i++) {
        underlay.push(await iperfClient(inst.backend, { node: 'master' }, worker.address));
        const cpu0 = cpuSeconds(agents);
        overlay.push(await iperfClient(inst.backend, { node: a.node, pod: a.name }, b.ip!));
        agentCpu += cpuSeconds(agents) - cpu0;
        gigabytes += (overlay[i] * seconds) / 8;
      }
    } finally {
      for (const pid of servers) await inst.backend.stop(pid);
    }
    const podLink = await inst.backend.podExec(a.node, a.name, ['ip', '-j', 'link', 'show', 'eth0']);
    return {
      config: config.label,
      lab: config.lab,
      backendConfig: config.backendConfig,
      podMtu: (JSON.parse(podLink.stdout)[0] as { mtu: number }).mtu,
      underlay: summary(underlay),
      podToPod: summary(overlay),
      ratioToUnderlay: +(median(overlay) / median(underlay)).toFixed(3),
      flanneldCpuSecondsPerGB: +(agentCpu / gigabytes).toFixed(2),
    };
  } finally {
    await inst.down();
  }
}

const results = [];
for (const config of CONFIGS) results.push(await measure(config));
const iperfVersion = (await import('node:child_process')).execFileSync('iperf3', ['--version']).toString().split('\n')[0];
const report = { lab: 'flannel-udp', kernel: release(), iperf3: iperfVersion, node: process.version, seconds, repeat, results };
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`flannel-udp: iperf3, one TCP stream, ${seconds} s × ${repeat} (medians; min–max), kernel ${report.kernel}\n`);
  const row = (cells: string[]) => console.log(cells.map((c, i) => (i === 0 ? c.padEnd(40) : c.padStart(22))).join(''));
  row(['datapath (pod MTU)', 'pod→pod Gbit/s', 'underlay Gbit/s', 'pod→pod / underlay', 'flanneld CPU s/GB']);
  for (const r of results) {
    row([
      `${r.config} (${r.podMtu})`,
      `${r.podToPod.medianGbps.toFixed(2)} (${r.podToPod.minGbps.toFixed(2)}–${r.podToPod.maxGbps.toFixed(2)})`,
      `${r.underlay.medianGbps.toFixed(2)} (${r.underlay.minGbps.toFixed(2)}–${r.underlay.maxGbps.toFixed(2)})`,
      `${(r.ratioToUnderlay * 100).toFixed(1)}%`,
      r.flanneldCpuSecondsPerGB.toFixed(2),
    ]);
  }
}
