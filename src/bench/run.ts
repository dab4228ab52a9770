// One lab's benchmark: servers up (by PID), a warm-up per pair, then N
// repetitions. Within a repetition each test runs on every pair back to back,
// so the underlay and the modes it is held against see the same moment of a
// shared machine (the comparison pairs them repetition by repetition). Every
// repetition is kept; medians and spreads come from them.
import { loadavg } from 'node:os';
import type { Backend } from '../topologies/backend.js';
import type { Lab } from '../lab/lab-file.js';
import type { PodRecord } from '../lab/state.js';
import { endpointLabel, Server } from './endpoint.js';
import { gitCommit, hostInfo, PathProbe, toolVersions, topologyOf } from './environment.js';
import { METRICS, type BenchTest, type MetricName } from './metrics.js';
import { planBench, type Endpoint, type PlannedPair } from './plan.js';
import { RESULT_SCHEMA_VERSION, type BenchResult } from './results.js';
import { spread } from './stats.js';
import { iperf3, ping, requestResponse, SERVERS } from './tools.js';

export interface BenchSettings {
  repeat: number;
  /** Seconds per throughput and request/response measurement. */
  durationS: number;
  /** Seconds of discarded TCP traffic per pair before the first repetition (0: none). */
  warmupS: number;
  /** Overrides the lab's list of tests. */
  tests?: BenchTest[];
}

export const DEFAULT_SETTINGS: BenchSettings = { repeat: 3, durationS: 2, warmupS: 1 };

export interface BenchTarget {
  backend: Backend;
  lab: Lab;
  pods: PodRecord[];
}

type Measured = Partial<Record<MetricName, number>>;

const gb = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(2)} Gb/s`);
const us = (v: number | undefined) => (v === undefined ? '?' : `${v.toFixed(0)} µs`);

export async function benchLab(target: BenchTarget, settings: BenchSettings, log: (msg: string) => void = () => undefined): Promise<BenchResult> {
  const { backend, lab, pods } = target;
  const startedAt = new Date().toISOString();
  const loadStart = loadavg()[0];
  const plan = planBench(lab, pods);
  const tests = settings.tests ?? plan.tests;
  const notes: string[] = [];
  const address = (node: string) => lab.topology.nodes.find((n) => n.name === node)!.address;

  const probe = new PathProbe(backend);
  const paths = await Promise.all(plan.pairs.map((p) => probe.path(p, address)));
  const topology = await topologyOf(probe, lab, pods);
  if (probe.ethtoolMissing) notes.push('ethtool is not installed: offloads were not recorded');
  notes.push(...probe.unrouted);
  if (settings.repeat < 2) notes.push('one repetition: no spread was measured, so every ratio here is within noise');

  const udpSent = new Map<string, number[]>();
  const measure = async (test: BenchTest, pair: PlannedPair): Promise<Measured> => {
    const { client, server } = pair;
    switch (test) {
      case 'tcp':
      case 'tcp4': {
        const r = await iperf3(backend, client, server, { durationS: settings.durationS, streams: test === 'tcp4' ? 4 : 1 });
        return test === 'tcp'
          ? { 'tcp.gbps': r.gbps, 'tcp.cpuMsPerGbit': r.cpuMsPerGbit, 'tcp.retransmits': r.retransmits }
          : { 'tcp4.gbps': r.gbps, 'tcp4.cpuMsPerGbit': r.cpuMsPerGbit };
      }
      case 'udp': {
        const r = await iperf3(backend, client, server, { durationS: settings.durationS, udpRate: plan.udpRate });
        udpSent.set(pair.name, [...(udpSent.get(pair.name) ?? []), r.sentGbps]);
        return { 'udp.gbps': r.gbps, 'udp.lossPct': r.udp?.lossPct, 'udp.jitterUs': r.udp && r.udp.jitterMs * 1000 };
      }
      case 'ping': {
        const r = await ping(backend, client, server);
        if (r.lossPct > 0) notes.push(`${pair.name}: ping lost ${r.lossPct.toFixed(1)}% of its requests in one repetition`);
        return { 'ping.p50Us': r.p50, 'ping.p90Us': r.p90, 'ping.p99Us': r.p99 };
      }
      case 'rr': {
        const r = await requestResponse(backend, client, server, settings.durationS);
        return { 'rr.p50Us': r.p50, 'rr.p90Us': r.p90, 'rr.p99Us': r.p99 };
      }
    }
  };

  const values = new Map<string, Map<MetricName, number[]>>(plan.pairs.map((p) => [p.name, new Map()]));
  const servers = await startServers(backend, plan.pairs, tests);
  try {
    if (settings.warmupS > 0 && tests.some((t) => t !== 'rr' && t !== 'ping')) {
      for (const pair of plan.pairs) await iperf3(backend, pair.client, pair.server, { durationS: settings.warmupS });
      log(`warm-up: ${settings.warmupS} s of TCP on each pair`);
    }
    for (let rep = 1; rep <= settings.repeat; rep++) {
      // Each repetition starts with the next pair, so a machine getting busier or quieter during
      // a repetition does not always favour the pair measured last.
      const order = plan.pairs.map((_, i) => plan.pairs[(i + rep - 1) % plan.pairs.length]);
      for (const test of tests) {
        const line: string[] = [];
        for (const pair of order) {
          const m = await measure(test, pair);
          for (const [name, v] of Object.entries(m) as [MetricName, number | undefined][]) {
            if (v === undefined || !Number.isFinite(v)) continue;
            const list = values.get(pair.name)!;
            list.set(name, [...(list.get(name) ?? []), v]);
          }
          line.push(`${pair.name} ${headline(test, m)}`);
        }
        log(`${test.padEnd(4)} ${rep}/${settings.repeat}: ${line.join(' · ')}`);
      }
    }
  } finally {
    for (const s of servers) await s.stop();
  }
  // A sender that cannot reach the asked rate is CPU-bound: its loss figure is at a lower load than asked.
  for (const [pair, sent] of udpSent) {
    const short = sent.filter((g) => g < rateGbps(plan.udpRate) * 0.9);
    if (short.length) notes.push(`${pair}: the UDP sender reached ${Math.min(...sent).toFixed(2)}–${Math.max(...sent).toFixed(2)} Gb/s of the ${plan.udpRate}b/s asked (CPU-bound) in ${short.length} of ${sent.length} repetitions`);
  }

  return {
    schemaVersion: RESULT_SCHEMA_VERSION,
    lab: lab.name,
    mode: lab.mode,
    description: lab.description,
    backend: backend.kind,
    startedAt,
    finishedAt: new Date().toISOString(),
    settings: { repeat: settings.repeat, durationS: settings.durationS, warmupS: settings.warmupS, udpRate: plan.udpRate, tests },
    host: { ...hostInfo(), loadavg: { start: loadStart, end: loadavg()[0] } },
    versions: await toolVersions(),
    git: await gitCommit(),
    topology,
    pairs: plan.pairs.map((p, i) => ({
      name: p.name,
      kind: p.kind,
      client: p.client,
      server: p.server,
      path: paths[i],
      metrics: Object.fromEntries(
        [...values.get(p.name)!.entries()].map(([name, vs]) => [name, { unit: METRICS[name].unit, better: METRICS[name].better, values: vs, ...spread(vs) }]),
      ),
    })),
    notes: [...new Set(notes)],
  };
}

function headline(test: BenchTest, m: Measured): string {
  switch (test) {
    case 'tcp':
      return gb(m['tcp.gbps']);
    case 'tcp4':
      return gb(m['tcp4.gbps']);
    case 'udp':
      return `${gb(m['udp.gbps'])}, ${(m['udp.lossPct'] ?? 0).toFixed(1)}% lost`;
    case 'ping':
      return `p50 ${us(m['ping.p50Us'])}`;
    case 'rr':
      return `p50 ${us(m['rr.p50Us'])} p99 ${us(m['rr.p99Us'])}`;
  }
}

/** "300M" → 0.3 (Gb/s), as iperf3 reads -b. */
export function rateGbps(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/.exec(rate);
  if (!m) throw new Error(`"${rate}" is not a rate such as 300M`);
  return (Number(m[1]) * { '': 1, K: 1e3, M: 1e6, G: 1e9 }[m[2] as '' | 'K' | 'M' | 'G']) / 1e9;
}

/** One iperf3 and (for request/response) one sockperf server per distinct server endpoint. */
async function startServers(backend: Backend, pairs: PlannedPair[], tests: BenchTest[]): Promise<Server[]> {
  const endpoints = new Map<string, Endpoint>(pairs.map((p) => [endpointLabel(p.server), p.server]));
  const wanted = [...(tests.some((t) => t.startsWith('tcp') || t === 'udp') ? [['iperf3', SERVERS.iperf3] as const] : []), ...(tests.includes('rr') ? [['sockperf', SERVERS.sockperf] as const] : [])];
  const started: Server[] = [];
  try {
    for (const ep of endpoints.values()) {
      for (const [name, s] of wanted) started.push(await Server.start(backend, ep, `${name}-server`, s.argv, s.port));
    }
    return started;
  } catch (e) {
    for (const s of started) await s.stop();
    throw e;
  }
}
